// The cuecast API from the pages: JSON in and out, the login token as a bearer, errors as
// ApiError with the server's message and the field it names (docs/api.md).

import { session } from './session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  /** Send the login token (default: when logged in). */
  auth?: boolean;
  signal?: AbortSignal;
  /** Keep the request alive while the page unloads (events). */
  keepalive?: boolean;
  /** Keep the session on a 401 (a route that takes only the admin token on this server). */
  keepSession?: boolean;
}

/** Calls `path` (e.g. `/api/shows`) and returns the parsed JSON (undefined for 204). */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = options.auth === false ? undefined : session.token();
  if (token) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  const response = await fetch(path, {
    method: options.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body,
    signal: options.signal,
    keepalive: options.keepalive,
  });
  if (response.status === 401 && token && !options.keepSession) {
    // The token expired or the server's secret changed: log out, the caller may ask again.
    session.clear();
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let field: string | undefined;
    try {
      const error = (await response.json()) as { error?: string; field?: string };
      if (error.error) message = error.error;
      field = error.field;
    } catch {
      /* not JSON: keep the status line */
    }
    throw new ApiError(response.status, message, field);
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}
