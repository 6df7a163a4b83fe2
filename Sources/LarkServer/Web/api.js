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

/// Sends a request and returns the response, throwing a `ServerError` unless it is 2xx.
export async function request(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new Error(`${url}: the server cannot be reached (${error.message})`);
  }
  if (!response.ok) throw await serverError(response);
  return response;
}

export async function requestJSON(url, options = {}) {
  const response = await request(url, options);
  return response.json();
}
