// Requests to Lark's JSON routes. A failed request becomes a `ServerError` carrying the server's
// own `{"error": {"code", "message"}}`, so the page can show what the server said.

export class ServerError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ServerError';
    this.status = status;
    this.code = code;
  }
}

/// The error a non-2xx response stands for, read from its JSON body where it has one.
export async function serverError(response) {
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // Not JSON (a proxy's page, say): the status line is all there is.
  }
  return new ServerError(response.status, code, `${message} (${response.status})`);
}

// The API key, when the server wants one: asked for once, kept in this browser's storage, and
// sent with every request as `Authorization: Bearer`.
const KEY_STORAGE = 'lark.apiKey';
let keyNeeded = () => {};

export function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return '';
  }
}

export function rememberApiKey(key) {
  localStorage.setItem(KEY_STORAGE, key);
}

/// Called with no argument when the server answers 401: the page asks for a key.
export function onKeyNeeded(listener) {
  keyNeeded = listener;
}

/// `options` with the key's `Authorization` header added, if there is a key.
export function withKey(options = {}) {
  const key = apiKey();
  if (!key) return options;
  const headers = new Headers(options.headers || {});
  headers.set('Authorization', `Bearer ${key}`);
  return { ...options, headers };
}

/// Sends a request (with the key) and returns the response, throwing a `ServerError` unless it is 2xx.
export async function request(url, options = {}) {
  let response;
  try {
    response = await fetch(url, withKey(options));
  } catch (error) {
    throw new Error(`${url}: the server cannot be reached (${error.message})`);
  }
  if (response.status === 401) keyNeeded();
  if (!response.ok) throw await serverError(response);
  return response;
}

/// A link to audio cannot carry a header: with a key, the file is fetched with it and saved from
/// memory instead of followed.
export async function downloadWithKey(link) {
  const response = await request(link.href);
  const url = URL.createObjectURL(await response.blob());
  const save = document.createElement('a');
  save.href = url;
  save.download = link.getAttribute('download') || '';
  document.body.append(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export async function requestJSON(url, options = {}) {
  const response = await request(url, options);
  return response.json();
}
