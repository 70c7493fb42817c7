// /embed.js: the <cuecast-show> web component shops load with one script tag (web/src/embed/).
// A second, library build after the pages' (package.json `build`): one classic script with a
// fixed name at the top of dist, which src/http/pages.rs serves `no-cache` (its name cannot
// change with its content, so shops never have to update their tag).
import { defineConfig } from 'vite';

export default defineConfig({
  publicDir: false,
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    target: 'es2022',
    sourcemap: false,
    lib: {
      entry: 'src/embed/embed.ts',
      name: 'CuecastEmbed',
      formats: ['iife'],
      fileName: () => 'embed.js',
    },
  },
});
