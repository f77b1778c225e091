// Single sign-on for the page, when the server has it configured (GET /auth/config): the
// authorization-code flow with PKCE as a public client, so no secret is ever in the browser.
//
// - Sign in: a random PKCE verifier, state and nonce are kept in this tab's session storage, and
//   the tab goes to the identity provider. It comes back to "/" with ?code&state; the state must
//   match, the code is exchanged at the provider's token endpoint (the page's CSP allows that one
//   origin), and the code leaves the address bar at once.
// - Tokens live in this tab's session storage only (gone when the tab closes; never local storage
//   or cookies). The token sent to the API is the access token (or the ID token when the server
//   says so).
// - Renewal: with a refresh token, a new token is fetched a minute before the old one expires
//   (and before any request that would go out with an expiring one). Without one, or when renewal
//   fails, the page says "sign in again".

const SESSION = "fathom.sso.session";
const PENDING = "fathom.sso.pending";
const RENEW_BEFORE_MS = 60_000;

let config = null;
let renewing = null;
let timer = null;
let onEnded = () => {};

/** A sign-in that did not complete: `message` is for people. */
export class SignInError extends Error {}

function b64url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random(size) {
  return b64url(crypto.getRandomValues(new Uint8Array(size)));
}

/** The claims of a JWT, read without checking it (the server checks): for names and expiry. */
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(part + "=".repeat((4 - (part.length % 4)) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

function readSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION) || "null");
  } catch {
    return null;
  }
}

/**
 * Load the server's sign-in settings. Resolves to { enabled, unavailable }: enabled when the
 * page can sign in; unavailable when SSO is configured but the identity provider is not reachable.
 */
export async function loadConfig({ ended } = {}) {
  if (ended) onEnded = ended;
  try {
    const response = await fetch("/auth/config", { headers: { Accept: "application/json" } });
    if (!response.ok) return { enabled: false, unavailable: true };
    const body = await response.json();
    const sso = body && body.sso;
    if (!sso || !sso.authorization_endpoint || !sso.token_endpoint) return { enabled: false, unavailable: false };
    config = sso;
    schedule();
    return { enabled: true, unavailable: false };
  } catch {
    return { enabled: false, unavailable: true };
  }
}

/** Go to the identity provider to sign in; the page comes back to complete it. */
export async function signIn() {
  const verifier = random(48);
  const state = random(16);
  const nonce = random(16);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce }));
  const url = new URL(config.authorization_endpoint);
  const params = {
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: config.scope,
    state,
    nonce,
    code_challenge: b64url(digest),
    code_challenge_method: "S256",
  };
  if (config.resource) params.resource = config.resource;
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  location.assign(url.toString());
}

/** Whether the address holds a sign-in response (?code or ?error, with state). */
export function returningFromSignIn() {
  const query = new URLSearchParams(location.search);
  return Boolean(config) && query.has("state") && (query.has("code") || query.has("error"));
}

/** Finish a sign-in the provider sent back here. Rejects with SignInError. */
export async function completeSignIn() {
  const query = new URLSearchParams(location.search);
  let pending = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  } catch {
    pending = null;
  }
  sessionStorage.removeItem(PENDING);
  // The code is single-use and short-lived, but it should not linger in the address or history.
  history.replaceState(null, "", location.pathname);
  if (!pending || query.get("state") !== pending.state) {
    throw new SignInError("This sign-in did not start in this tab, or it was already used. Sign in again.");
  }
  if (query.has("error")) {
    throw new SignInError(`The identity provider did not sign you in (${query.get("error")}). Try again.`);
  }
  const form = {
    grant_type: "authorization_code",
    code: query.get("code"),
    redirect_uri: config.redirect_uri,
    client_id: config.client_id,
    code_verifier: pending.verifier,
  };
  if (config.resource) form.resource = config.resource;
  const tokens = await tokenRequest(form);
  if (tokens.id_token && claimsOf(tokens.id_token).nonce !== pending.nonce) {
    throw new SignInError("The identity provider's answer did not match this sign-in. Sign in again.");
  }
  store(tokens, null);
}

async function tokenRequest(form) {
  let response;
  try {
    response = await fetch(config.token_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: new URLSearchParams(form),
      credentials: "omit",
    });
  } catch {
    throw new SignInError("The identity provider could not be reached. Try again.");
  }
  if (!response.ok) throw new SignInError("The identity provider refused the sign-in. Sign in again.");
  return response.json();
}

function store(tokens, previous) {
  const token = config.token === "id_token" ? tokens.id_token : tokens.access_token;
  if (!token) throw new SignInError("The identity provider sent no usable token. Sign in again.");
  const claims = claimsOf(tokens.id_token || (previous && previous.id_token) || "");
  const exp = claimsOf(token).exp;
  const expiresAt = exp ? exp * 1000 : Date.now() + (Number(tokens.expires_in) || 300) * 1000;
  const session = {
    token,
    expires_at: expiresAt,
    refresh_token: tokens.refresh_token || (previous && previous.refresh_token) || null,
    id_token: tokens.id_token || (previous && previous.id_token) || null,
    name: claims.name || claims.preferred_username || claims.email || claimsOf(token).sub || "",
  };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  schedule();
}

function schedule() {
  clearTimeout(timer);
  const session = readSession();
  if (!session) return;
  const lead = session.refresh_token ? RENEW_BEFORE_MS : 0;
  timer = setTimeout(() => renew(), Math.max(0, Math.min(session.expires_at - Date.now() - lead, 2 ** 31 - 1)));
}

/** Renew with the refresh token; on failure (or without one) the session ends. */
export function renew() {
  if (renewing) return renewing;
  renewing = (async () => {
    const session = readSession();
    if (!session) return false;
    if (!session.refresh_token) {
      end();
      return false;
    }
    const form = { grant_type: "refresh_token", refresh_token: session.refresh_token, client_id: config.client_id };
    if (config.resource) form.resource = config.resource;
    try {
      store(await tokenRequest(form), session);
      return true;
    } catch {
      end();
      return false;
    }
  })().finally(() => {
    renewing = null;
  });
  return renewing;
}

function end() {
  signOut();
  onEnded();
}

/** Forget this tab's tokens (the identity provider's own session is left alone). */
export function signOut() {
  clearTimeout(timer);
  sessionStorage.removeItem(SESSION);
}

/** The token to send, or "" when not signed in (or it has expired). */
export function bearer() {
  const session = readSession();
  return session && session.expires_at > Date.now() ? session.token : "";
}

/** Before a request: renew a token that expires within a minute (never throws). */
export async function fresh() {
  const session = readSession();
  if (config && session && session.refresh_token && session.expires_at - Date.now() < RENEW_BEFORE_MS) {
    await renew();
  }
}

/** Who is signed in, for the header ("" when nobody). */
export function signedInAs() {
  const session = readSession();
  return session ? session.name || "signed in" : "";
}
