// One build for every page cuecast serves (src/http/pages.rs maps the routes to these files):
// index.html (/), show.html (/shows/{id}, /embed/shows/{id}), studio.html (/studio).
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rollupOptions: {
      input: {
        index: 'index.html',
        show: 'show.html',
        studio: 'studio.html',
      },
    },
  },
});
