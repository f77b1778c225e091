// The conversation the Ask view shows as a thread: its id (in this tab's session storage, so a
// reload resumes it), the turns on the page, and starting over with a new conversation.

import { request } from "./api.js";
import { answerParts, renderStoredAnswer } from "./answer.js";
import { $, clear, el } from "./dom.js";

const STORAGE = "fathom.conversation";
const FIRST_PLACEHOLDER = "e.g. How often are the keys rotated?";
const FOLLOW_UP_PLACEHOLDER = "Ask a follow-up, e.g. And who rotates them?";

let generation = 0; // bumped when the conversation ends: a creation still in flight is dropped

export function conversationId() {
  return sessionStorage.getItem(STORAGE) || "";
}

function remember(id) {
  if (id) sessionStorage.setItem(STORAGE, id);
  else sessionStorage.removeItem(STORAGE);
}

export function messagesPath(id) {
  return `/v1/conversations/${encodeURIComponent(id)}/messages`;
}

/** The conversation to ask in: the current one, or one created now for the first question. */
export async function ensureConversation(signal) {
  const id = conversationId();
  if (id) return id;
  const mine = generation;
  const made = await request("POST", "/v1/conversations", { signal });
  if (mine !== generation) throw new DOMException("The conversation was ended meanwhile.", "AbortError");
  remember(made.conversation_id);
  return made.conversation_id;
}

/** Forget the conversation: the next question starts a new one. `clearTurns` empties the thread. */
export function endConversation({ clearTurns }) {
  generation += 1;
  remember("");
  if (clearTurns) clear($("thread"));
  changed();
}

/** A turn for `question` at the end of the thread: the answer's parts, plus `turn` and `rewrite`. */
export function addTurn(question) {
  const parts = answerParts();
  parts.rewrite = el("p", { className: "rewrite", hidden: true });
  parts.turn = el(
    "li",
    { className: "turn" },
    el("h2", { className: "turn-question" }, el("span", { className: "visually-hidden", text: "You asked: " }), question),
    parts.rewrite,
    parts.root,
  );
  $("thread").append(parts.turn);
  changed();
  return parts;
}

export function removeTurn(parts) {
  parts.turn.remove();
  changed();
}

/** A line in the thread just before the turn of `parts`, such as "a new conversation starts here". */
export function breakBefore(parts, text) {
  parts.turn.before(el("li", { className: "thread-break", text }));
}

/** Show what a follow-up was searched as (its standalone rewrite), when that is not what was asked. */
export function showRewrite(parts, question, standalone) {
  if (!standalone || standalone === question) return;
  parts.rewrite.textContent = `Searched as: ${standalone}`;
  parts.rewrite.hidden = false;
}

/**
 * Show the tab's conversation again after a reload (GET /v1/conversations/{id}). Resolves to the
 * number of turns shown; a conversation that is gone (expired, deleted, another key's) is forgotten.
 */
export async function resume() {
  const id = conversationId();
  if (!id || $("thread").children.length) return 0;
  const mine = generation;
  let conversation;
  try {
    conversation = await request("GET", `/v1/conversations/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error.status === 404) endConversation({ clearTurns: false });
    throw error;
  }
  if (mine !== generation || $("thread").children.length) return 0; // a question was asked meanwhile
  for (const turn of conversation.turns) {
    const parts = addTurn(turn.question);
    showRewrite(parts, turn.question, turn.standalone_question);
    renderStoredAnswer(parts, turn);
  }
  return conversation.turns.length;
}

function changed() {
  const turns = $("thread").querySelectorAll(".turn").length;
  $("thread").hidden = $("thread").children.length === 0;
  $("new-conversation").disabled = turns === 0 && !conversationId();
  $("question").placeholder = turns ? FOLLOW_UP_PLACEHOLDER : FIRST_PLACEHOLDER;
}

export function initThread() {
  changed();
}
