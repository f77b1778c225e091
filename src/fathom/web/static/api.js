// The HTTP API as the page uses it: the key in session storage (or a signed-in token), JSON
// and SSE requests, and errors turned into messages people can act on.

const KEY_STORAGE = "fathom.apiKey";

// Where a signed-in token comes from (sso.js): `bearer()` the token or "", `fresh()` renews an
// expiring one before a request. Without sign-in, the pasted key is sent.
let credentials = { bearer: () => "", fresh: async () => {} };

export function useCredentials(source) {
  credentials = source;
}

export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** An API failure: `message` is for people; `status` and `code` for the page's own choices. */
export class ApiError extends Error {
  constructor(status, code, message, requestId = "", retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

const MESSAGES = {
  401: () =>
    credentials.bearer()
      ? "Your sign-in was not accepted or has ended. Sign in again (top right)."
      : "Your API key was not accepted. Enter a valid key under “API key” (top right).",
  404: (what) => `${what || "That item"} was not found. It may have been deleted, or your key may not read it.`,
  413: (what) => `${what || "The upload"} is larger than this server accepts.`,
  429: (_what, retry) =>
    `Too many requests for this key right now. Try again in ${retry ? `${retry} seconds` : "a minute"}.`,
  // Readable, but not writable by this key: its role, the document's owner and write ACL, or the
  // key's scopes (auth.scope_missing) say no.
  403: (_what, _retry, code) =>
    String(code) === "auth.scope_missing"
      ? "This key is limited to other uses (its scopes). Use a key with the “write” scope to change documents."
      : String(code).endsWith(".write_denied")
        ? "Your key may read this document, but only its owner, an editor in its write ACL or an admin may replace it."
        : "Your key may read this, but only its owner, an editor in its write ACL or an admin may change it.",
};

/** A message for a failed response: what happened and what to do, plus the server's own words. */
export function describe(error, what = "") {
  if (!(error instanceof ApiError)) {
    return "The fathom server could not be reached. Check that it is running, then try again.";
  }
  const known = MESSAGES[error.status];
  if (known) return known(what, error.retryAfter, error.code);
  if (error.status >= 500) {
    return `The server failed (${error.code}). Quote request ${error.requestId || "id unknown"} to whoever runs it.`;
  }
  return error.message || `The request failed (${error.status}).`;
}

async function failure(response) {
  let code = "request.failed";
  let message = "";
  let requestId = response.headers.get("X-Request-ID") || "";
  try {
    const body = await response.json();
    if (body && body.error) {
      code = String(body.error.code || code);
      message = String(body.error.message || "");
      requestId = String(body.error.request_id || requestId);
    }
  } catch {
    // Not our JSON shape (a proxy's page, say): the status alone must do.
  }
  const retry = response.headers.get("Retry-After");
  return new ApiError(response.status, code, message, requestId, retry ? Number(retry) : null);
}

async function headers(extra = {}) {
  await credentials.fresh();
  const all = { ...extra };
  const key = credentials.bearer() || getKey();
  if (key) all.Authorization = `Bearer ${key}`;
  return all;
}

/** A JSON request to the API; resolves to the parsed body, rejects with ApiError. */
export async function request(method, path, { json, form, signal } = {}) {
  const init = { method, headers: await headers({ Accept: "application/json" }), signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new TypeError("network");
  }
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

/**
 * POST `body` to an answering route (`/v1/ask`, `/v1/conversations/{id}/messages`) as
 * server-sent events. Calls `onEvent(name, data)` for each event, in order. Resolves when the
 * stream ends; rejects with ApiError (refused before streaming), or an AbortError when `signal`
 * aborts.
 */
export async function streamAnswer(path, body, { signal, onEvent }) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: await headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new TypeError("network");
  }
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}
