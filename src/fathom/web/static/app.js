// The page's entry point: sign-in or the API key panel, the two views, and what happens on a 401.

import { ApiError, getKey, request, setKey, useCredentials } from "./api.js";
import { initAsk, newConversation, resumeConversation } from "./ask.js";
import { $ } from "./dom.js";
import { initDocuments, loadDocuments } from "./documents.js";
import * as sso from "./sso.js";

const VIEWS = { ask: ["tab-ask", "view-ask"], documents: ["tab-documents", "view-documents"] };

let ssoEnabled = false;

function hasCredentials() {
  return Boolean(sso.bearer() || getKey());
}

function show(name) {
  for (const [view, [tab, section]] of Object.entries(VIEWS)) {
    const active = view === name;
    $(section).hidden = !active;
    if (active) $(tab).setAttribute("aria-current", "page");
    else $(tab).removeAttribute("aria-current");
  }
  if (name === "documents" && hasCredentials()) loadDocuments();
}

function keyPanel(open) {
  $("key-panel").hidden = !open;
  $("key-toggle").setAttribute("aria-expanded", String(open));
  if (open) $("key-input").focus();
}

function banner(message) {
  const node = $("banner");
  node.textContent = message;
  node.hidden = !message;
}

function unauthorized() {
  if (ssoEnabled && !getKey()) {
    sso.signOut();
    refreshState();
    banner("Your sign-in was not accepted or has ended. Sign in again, or enter an API key.");
    return;
  }
  banner("Your API key was not accepted. Enter a valid key below.");
  keyPanel(true);
}

function sessionEnded() {
  refreshState();
  banner("Your sign-in has ended. Sign in again to go on.");
}

function refreshState() {
  const has = Boolean(getKey());
  $("key-toggle").textContent = has ? "API key ✓" : "API key";
  $("key-toggle").setAttribute("aria-label", has ? "API key (set)" : "API key (not set)");
  $("account").hidden = !ssoEnabled;
  const who = sso.signedInAs();
  $("account-name").textContent = who ? `Signed in as ${who}` : "";
  $("sign-in").hidden = Boolean(who);
  $("sign-out").hidden = !who;
}

// The key is checked on entry (GET /v1/me): the header then says whose it is, or the key panel
// opens with the reason.
async function checkIdentity() {
  const node = $("identity");
  node.hidden = true;
  node.textContent = "";
  if (!hasCredentials()) return;
  try {
    const me = await request("GET", "/v1/me");
    node.textContent = `${me.tenant} · ${me.user || "no user"}`;
    node.title = `Tenant ${me.tenant}, user ${me.user || "(none)"}, role ${me.role}`;
    node.hidden = false;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) unauthorized();
  }
}

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

// "/" focuses the question (unless typing somewhere); Esc stops a running answer.
function shortcuts(event) {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "/" && !typing(event.target)) {
    event.preventDefault();
    show("ask");
    $("question").focus();
  } else if (event.key === "Escape" && !$("stop-button").disabled) {
    event.preventDefault();
    $("stop-button").click();
  }
}

async function startSso() {
  const state = await sso.loadConfig({ ended: sessionEnded });
  ssoEnabled = state.enabled;
  useCredentials({ bearer: sso.bearer, fresh: sso.fresh });
  if (state.unavailable) {
    banner("Sign-in is unavailable right now (the identity provider cannot be reached). You can enter an API key.");
  }
  if (ssoEnabled && sso.returningFromSignIn()) {
    try {
      await sso.completeSignIn();
      setKey("");
    } catch (error) {
      banner(error instanceof sso.SignInError ? error.message : "The sign-in failed. Sign in again.");
    }
  }
  return state;
}

async function init() {
  // A stale error clears on the next action (a new one, if any, replaces it).
  for (const id of ["tab-ask", "tab-documents"]) $(id).addEventListener("click", () => banner(""));
  $("ask-form").addEventListener("submit", () => banner(""), { capture: true });
  document.addEventListener("keydown", shortcuts);
  $("tab-ask").addEventListener("click", () => show("ask"));
  $("tab-documents").addEventListener("click", () => show("documents"));
  $("key-toggle").addEventListener("click", () => keyPanel($("key-panel").hidden));
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    setKey(key);
    if (key) sso.signOut();
    newConversation(); // conversations belong to who asked: another key starts afresh
    $("key-input").value = "";
    refreshState();
    banner("");
    keyPanel(false);
    if (!$("view-documents").hidden) loadDocuments();
    checkIdentity();
    $("question").focus();
  });
  $("key-forget").addEventListener("click", () => {
    setKey("");
    newConversation();
    refreshState();
    checkIdentity();
    banner("The key was forgotten. Enter a key to go on.");
  });
  $("sign-in").addEventListener("click", () => {
    banner("");
    sso.signIn().catch(() => banner("The sign-in could not start. Try again."));
  });
  $("sign-out").addEventListener("click", () => {
    sso.signOut();
    newConversation();
    refreshState();
    banner("You are signed out of fathom in this tab. Sign in or enter a key to go on.");
  });
  initAsk({ unauthorized });
  initDocuments({ unauthorized });
  const state = await startSso();
  refreshState();
  if (!hasCredentials() && $("banner").hidden) {
    if (ssoEnabled) {
      banner("Sign in to start, or enter a fathom API key.");
    } else {
      banner("Enter your fathom API key to start.");
      keyPanel(true);
    }
  } else if (!hasCredentials() && !state.enabled) {
    keyPanel(true);
  }
  show("ask");
  if (hasCredentials()) {
    checkIdentity();
    resumeConversation();
  }
}

init();
