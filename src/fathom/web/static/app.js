// The page's entry point: the API key panel, the two views, and what happens on a 401.

import { getKey, setKey } from "./api.js";
import { initAsk } from "./ask.js";
import { $ } from "./dom.js";
import { initDocuments, loadDocuments } from "./documents.js";

const VIEWS = { ask: ["tab-ask", "view-ask"], documents: ["tab-documents", "view-documents"] };

function show(name) {
  for (const [view, [tab, section]] of Object.entries(VIEWS)) {
    const active = view === name;
    $(section).hidden = !active;
    if (active) $(tab).setAttribute("aria-current", "page");
    else $(tab).removeAttribute("aria-current");
  }
  if (name === "documents" && getKey()) loadDocuments();
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
  banner("Your API key was not accepted. Enter a valid key below.");
  keyPanel(true);
}

function refreshKeyState() {
  const has = Boolean(getKey());
  $("key-toggle").textContent = has ? "API key ✓" : "API key";
  $("key-toggle").setAttribute("aria-label", has ? "API key (set)" : "API key (not set)");
}

function init() {
  $("tab-ask").addEventListener("click", () => show("ask"));
  $("tab-documents").addEventListener("click", () => show("documents"));
  $("key-toggle").addEventListener("click", () => keyPanel($("key-panel").hidden));
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    setKey(key);
    $("key-input").value = "";
    refreshKeyState();
    banner("");
    keyPanel(false);
    if (!$("view-documents").hidden) loadDocuments();
    $("question").focus();
  });
  $("key-forget").addEventListener("click", () => {
    setKey("");
    refreshKeyState();
    banner("The key was forgotten. Enter a key to go on.");
  });
  initAsk({ unauthorized });
  initDocuments({ unauthorized });
  refreshKeyState();
  if (!getKey()) {
    banner("Enter your fathom API key to start.");
    keyPanel(true);
  }
  show("ask");
}

init();
