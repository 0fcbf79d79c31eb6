// mazenet dashboard: the REST client.
import { API } from './config.js';
import { session } from './session.js';

export { session };

// hooks are set by the shell: what a 401 or a forced password change does.
export const hooks = { sessionEnded() {}, forcePasswordChange() {} };

// ApiError is a refused or failed request: status 0 means the API could not
// be reached; body is the decoded JSON error ({detail, field?, issues?, ...}).
export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.body = body || {};
  }

  // field is the request field the API blamed (422 {detail, field}).
  get field() { return typeof this.body.field === 'string' ? this.body.field : ''; }
}

// api sends one request with the bearer token and returns the decoded body,
// or throws ApiError carrying the server's `detail`. A 401 anywhere but the
// login form ends the session; a forced password change reroutes there.
export async function api(method, path, body, opts) {
  opts = opts || {};
  const headers = { Accept: 'application/json' };
  const tok = session.token;
  if (tok && !opts.noAuth) headers.Authorization = 'Bearer ' + tok;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path.startsWith('/') ? path : API + '/' + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'same-origin',
    });
  } catch (e) {
    throw new ApiError(0, 'Network error: the API could not be reached.');
  }
  let data = null;
  const text = await res.text();
  if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
  if (res.ok) return data;
  const detail = (data && typeof data.detail === 'string' && data.detail) ||
    (data && data.detail != null ? JSON.stringify(data.detail) : `HTTP ${res.status} ${res.statusText || ''}`.trim());
  const err = new ApiError(res.status, detail, data);
  if (!opts.noAuth && !opts.keepSession) {
    if (res.status === 401 && tok) hooks.sessionEnded('Your session has ended; please sign in again.', tok);
    else if (res.status === 403 && /password change required/i.test(detail)) hooks.forcePasswordChange();
  }
  throw err;
}
