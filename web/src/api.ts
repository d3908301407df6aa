// Talks to gridcc with the user's bearer token. A 401 means the token has
// expired or was revoked: the login form comes up over the page (which keeps
// its view and state), and the request is retried once signed in again.
export interface Me { id: number; name: string; role: string; department?: string }

let token = localStorage.getItem('gridcc.token') || '';
let relogin: (() => Promise<void>) | null = null;

export function getToken(): string { return token; }
export function setToken(t: string): void {
  token = t;
  if (t) localStorage.setItem('gridcc.token', t);
  else localStorage.removeItem('gridcc.token');
}
export function onUnauthorized(f: () => Promise<void>): void { relogin = f; }

export class ApiError extends Error {
  constructor(public status: number, public body: any) {
    super(body?.error?.message || `HTTP ${status}`);
  }
}

export async function api<T = any>(path: string, init: RequestInit = {}, retried = false): Promise<T> {
  const headers = new Headers(init.headers);
  if (token) headers.set('Authorization', `Bearer ${token}`);
  if (init.body && typeof init.body === 'string') headers.set('Content-Type', 'application/json');
  const r = await fetch(path, { ...init, headers });
  if (r.status === 401 && !retried && relogin && !path.startsWith('/api/login')) {
    await relogin();
    return api<T>(path, init, true);
  }
  const text = await r.text();
  let body: any = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!r.ok) throw new ApiError(r.status, body);
  return body as T;
}

export async function login(username: string, password: string): Promise<Me> {
  const r = await api<{ token: string; user: Me }>('/api/login', {
    method: 'POST', body: JSON.stringify({ username, password }),
  });
  setToken(r.token);
  return r.user;
}
