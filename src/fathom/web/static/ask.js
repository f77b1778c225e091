// The Ask view: a conversation thread. Each question is a turn whose answer streams in, then is
// shown verified with its citations and feedback; follow-ups are asked in the same conversation
// (POST /v1/conversations/{id}/messages) until "New conversation" starts over.

import { ApiError, describe, streamAnswer } from "./api.js";
import { initAnswers, markIncomplete, renderAnswer } from "./answer.js";
import { $, el, say } from "./dom.js";
import { feedbackForm } from "./feedback.js";
import * as thread from "./thread.js";

let controller = null;
let resuming = null; // the resumed conversation loading after a reload; questions wait for it
let onUnauthorized = () => {};

export function initAsk({ unauthorized }) {
  onUnauthorized = unauthorized;
  initAnswers({ unauthorized });
  thread.initThread();
  const form = $("ask-form");
  const question = $("question");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ask(question.value.trim());
  });
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  $("stop-button").addEventListener("click", () => controller?.abort());
  $("new-conversation").addEventListener("click", () => {
    newConversation();
    say($("ask-status"), "New conversation: the next question starts it.", "ok");
    question.focus();
  });
}

/** End the conversation on the page (the key or sign-in changed, or the user asked to). */
export function newConversation() {
  const running = controller;
  controller = null; // its own handlers then leave the status alone
  running?.abort();
  busy(false);
  thread.endConversation({ clearTurns: true });
  say($("ask-status"), "");
}

/** Show the tab's earlier conversation again, if there is one (after a reload). */
export function resumeConversation() {
  resuming = thread
    .resume()
    .then((turns) => {
      if (turns) say($("ask-status"), `Resumed this tab's conversation (${turns} earlier question${turns === 1 ? "" : "s"}).`, "ok");
    })
    .catch((error) => {
      if (error.status === 404) return; // gone: the next question starts a new one
      say($("ask-status"), `The earlier conversation could not be shown. ${describe(error, "The conversation")}`, "error");
      if (error instanceof ApiError && error.status === 401) onUnauthorized();
    })
    .finally(() => {
      resuming = null;
    });
}

function busy(on, turn = null) {
  $("ask-button").disabled = on;
  $("stop-button").disabled = !on;
  turn?.setAttribute("aria-busy", on ? "true" : "false");
}

async function ask(query) {
  const status = $("ask-status");
  if (!query) {
    say(status, "Type a question first.", "error");
    return;
  }
  if (resuming) await resuming;
  controller?.abort();
  controller = new AbortController();
  const mine = controller;
  const parts = thread.addTurn(query);
  const live = el("p", { className: "answer-text streaming" });
  parts.body.append(live);
  parts.turn.scrollIntoView({ block: "nearest" });
  $("question").value = "";
  say(status, "Answering… (the text is checked against your documents when it is complete)", "busy");
  busy(true, parts.turn);
  try {
    await answerInConversation(query, parts, live, mine.signal);
  } catch (error) {
    if (error.name === "AbortError") {
      // Stop, a newer question or a new conversation (which took the turn off the page).
      markIncomplete(parts, live, "Stopped: this partial text was not checked against your documents.");
      if (mine === controller) say(status, "Stopped. The answer was cancelled before it finished.", "warn");
    } else if (mine === controller) {
      // Refused before any answer: the turn goes, the question comes back to be asked again.
      say(status, describe(error), "error");
      thread.removeTurn(parts);
      if (!$("question").value) $("question").value = query;
      if (error instanceof ApiError && error.status === 401) onUnauthorized();
    }
  } finally {
    parts.turn.setAttribute("aria-busy", "false");
    if (mine === controller) {
      busy(false);
      controller = null;
    }
  }
}

/** Ask `query` in the conversation (one is created for the first question); a conversation the
 * server no longer has (expired, deleted) is replaced once by a new one, and the thread says so. */
async function answerInConversation(query, parts, live, signal) {
  for (let attempt = 0; ; attempt += 1) {
    const id = await thread.ensureConversation(signal);
    try {
      await streamAnswer(thread.messagesPath(id), { question: query }, {
        signal,
        onEvent: (name, data) => onEvent(name, data, query, parts, live),
      });
      return;
    } catch (error) {
      if (attempt > 0 || !(error instanceof ApiError) || error.code !== "conversation.not_found") throw error;
      thread.endConversation({ clearTurns: false });
      thread.breakBefore(parts, "The earlier conversation has ended; a new one starts here.");
    }
  }
}

function onEvent(name, data, query, parts, live) {
  const status = $("ask-status");
  if (name === "delta") {
    live.append(document.createTextNode(data.text));
  } else if (name === "done") {
    renderAnswer(parts, data);
    thread.showRewrite(parts, query, data.rewrite?.standalone);
    if (data.answer_id) parts.root.append(feedbackForm(data.answer_id, onUnauthorized));
    if (data.abstained) say(status, "No answer: your documents do not say.", "warn");
    else say(status, `Answered with ${data.citations.length} citation${data.citations.length === 1 ? "" : "s"}.`, "ok");
  } else if (name === "error") {
    say(status, `The answer failed part way: ${data.error.message} (${data.error.code})`, "error");
    markIncomplete(parts, live, "Incomplete: the answer failed before it finished.");
  }
}
