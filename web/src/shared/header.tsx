// The header every page shares: the shop's brand (from `[web]`), who is logged in, log in/out.

import { useEffect, useState } from 'preact/hooks';
import { requireLogin } from './login';
import { session, Claims } from './session';
import { site } from './site';

/** The logged-in person, updated on login/logout (also in other tabs). */
export function useSession(): Claims | null {
  const [claims, setClaims] = useState(session.claims());
  useEffect(() => session.subscribe(setClaims), []);
  return claims;
}

export function Header({ children }: { children?: preact.ComponentChildren }) {
  const claims = useSession();
  const { shop_name, logo_url } = site();
  return (
    <header class="site-header">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <a class="site-brand" href="/">
        {logo_url ? <img src={logo_url} alt="" width={32} height={32} /> : null}
        <span>{shop_name}</span>
      </a>
      {children}
      {claims ? (
        <>
          <span class="site-user">{claims.sub}</span>
          <button type="button" class="button" onClick={() => session.clear()}>
            Log out
          </button>
        </>
      ) : (
        <button type="button" class="button" onClick={() => requireLogin('Log in to chat, buy and follow shows.')}>
          Log in
        </button>
      )}
    </header>
  );
}
