// The host studio (/studio, /studio/...): a host's shows before, during and after they run, and
// their stream keys. For logged-in users with the `host` capability; anyone else is asked to log
// in (anonymous) or told the studio is for hosts.

import { render } from 'preact';
import { useEffect } from 'preact/hooks';
import '../shared/base.css';
import './studio.css';
import { Header, useSession } from '../shared/header';
import { requireLogin } from '../shared/login';
import { pageTitle } from '../shared/site';
import { onLink, usePath } from './model';
import { ShowList, NewShow } from './shows';
import { ShowPage } from './show';
import { KeysPage } from './keys';

function Nav({ path }: { path: string }) {
  const shows = path === '/studio' || path.startsWith('/studio/shows');
  return (
    <nav class="studio-nav" aria-label="Studio">
      <a href="/studio" onClick={onLink} aria-current={shows ? 'page' : undefined}>
        Shows
      </a>
      <a href="/studio/keys" onClick={onLink} aria-current={path === '/studio/keys' ? 'page' : undefined}>
        Stream keys
      </a>
    </nav>
  );
}

function Routes({ path, user }: { path: string; user: string }) {
  if (path === '/studio/keys') return <KeysPage />;
  if (path === '/studio/shows/new') return <NewShow user={user} />;
  const match = path.match(/^\/studio\/shows\/([^/]+)\/?$/);
  if (match) return <ShowPage key={match[1]} id={decodeURIComponent(match[1])} />;
  return <ShowList user={user} />;
}

function Studio() {
  const claims = useSession();
  const path = usePath().replace(/\/+$/, '') || '/studio';
  useEffect(() => {
    document.title = pageTitle('Studio');
    if (!claims) void requireLogin('Log in with your host account to open the studio.');
  }, [claims]);

  let body;
  if (!claims) {
    body = (
      <section class="studio-gate">
        <h1>Studio</h1>
        <p>The studio is where hosts plan and run their live shows. Log in with your host account.</p>
        <button type="button" class="button primary" onClick={() => requireLogin('Log in with your host account to open the studio.')}>
          Log in
        </button>
      </section>
    );
  } else if (!claims.caps.includes('host')) {
    body = (
      <section class="studio-gate" role="status">
        <h1>Studio</h1>
        <p>
          <strong>{claims.sub}</strong>, your account cannot host shows. Ask the shop's admin to give it the
          host capability, then log in again.
        </p>
        <a class="button" href="/">
          Back to the shop
        </a>
      </section>
    );
  } else {
    body = (
      <div class="studio-content">
        <div class="studio-nav-narrow">
          <Nav path={path} />
        </div>
        <Routes path={path} user={claims.sub} />
      </div>
    );
  }
  return (
    <>
      <Header>
        <span class="studio-badge">Studio</span>
        {claims?.caps.includes('host') ? (
          <div class="studio-nav-wide">
            <Nav path={path} />
          </div>
        ) : (
          <span class="studio-spacer" />
        )}
      </Header>
      <main id="main" class="studio">
        {body}
      </main>
    </>
  );
}

render(<Studio />, document.getElementById('app')!);
