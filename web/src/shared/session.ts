// The logged-in shopper or host: the login token from POST /api/login or /api/signup, kept in
// localStorage, and what it says (username, capabilities, expiry: src/users/token.rs, format
// `v1.<base64url JSON>.<signature>`; the server checks the signature, the page only reads it).

export type Capability = 'send' | 'moderate' | 'host' | 'shop';

export interface Claims {
  sub: string;
  caps: Capability[];
  exp: number;
}

const KEY = 'cuecast.token';
type Listener = (claims: Claims | null) => void;
const listeners = new Set<Listener>();

function decode(token: string): Claims | null {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== 'v1') return null;
  try {
    const json = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(json) as Claims;
    if (typeof claims.sub !== 'string' || !Array.isArray(claims.caps)) return null;
    if (typeof claims.exp === 'number' && claims.exp * 1000 <= Date.now()) return null;
    return claims;
  } catch {
    return null;
  }
}

function read(): string | null {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export const session = {
  /** The login token, if logged in and not expired. */
  token(): string | null {
    const token = read();
    return token && decode(token) ? token : null;
  },
  /** Who is logged in. */
  claims(): Claims | null {
    const token = read();
    return token ? decode(token) : null;
  },
  can(cap: Capability): boolean {
    return session.claims()?.caps.includes(cap) ?? false;
  },
  set(token: string): Claims | null {
    const claims = decode(token);
    if (!claims) return null;
    try {
      localStorage.setItem(KEY, token);
    } catch {
      /* private mode: the session lasts as long as the page */
    }
    listeners.forEach((l) => l(claims));
    return claims;
  },
  clear(): void {
    try {
      localStorage.removeItem(KEY);
    } catch {
      /* nothing stored */
    }
    listeners.forEach((l) => l(null));
  },
  /** Called on login and logout (also from another tab). Returns the unsubscribe. */
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

window.addEventListener('storage', (event) => {
  if (event.key === KEY) listeners.forEach((l) => l(session.claims()));
});
