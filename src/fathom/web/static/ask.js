// The Ask view: a streamed answer, its citations as chips, the cited passage in context,
// honest abstentions and unsupported sentences, a confidence indicator and feedback.

import { ApiError, askStream, describe, request } from "./api.js";
import { $, append, clear, el, say } from "./dom.js";

const FALLBACK_NOTE = "LLM unavailable";

let controller = null;
let current = null; // the finished answer (the API's `done` body)
let rating = null;
let onUnauthorized = () => {};

export function initAsk({ unauthorized }) {
  onUnauthorized = unauthorized;
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
  $("passage-close").addEventListener("click", () => $("passage-dialog").close());
  $("thumb-up").addEventListener("click", () => choose("up"));
  $("thumb-down").addEventListener("click", () => choose("down"));
  $("feedback-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendFeedback();
  });
}

function busy(on) {
  $("ask-button").disabled = on;
  $("stop-button").disabled = !on;
  $("answer").setAttribute("aria-busy", on ? "true" : "false");
}

async function ask(query) {
  const status = $("ask-status");
  if (!query) {
    say(status, "Type a question first.", "error");
    return;
  }
  controller?.abort();
  controller = new AbortController();
  const mine = controller;
  current = null;
  resetFeedback();
  const answer = $("answer");
  answer.hidden = false;
  clear($("answer-meta"));
  clear($("answer-notes"));
  clear($("answer-removed"));
  clear($("answer-sources"));
  const live = el("p", { className: "answer-text streaming" });
  clear($("answer-body")).append(live);
  say(status, "Answering… (the text is checked against your documents when it is complete)", "busy");
  busy(true);
  try {
    await askStream(query, {
      signal: mine.signal,
      onEvent(name, data) {
        if (name === "delta") live.append(document.createTextNode(data.text));
        else if (name === "done") finish(data);
        else if (name === "error") {
          say(status, `The answer failed part way: ${data.error.message} (${data.error.code})`, "error");
          markIncomplete(live, "Incomplete: the answer failed before it finished.");
          current = null;
        }
      },
    });
  } catch (error) {
    if (error.name === "AbortError") {
      if (mine === controller) {
        say(status, "Stopped. The answer was cancelled before it finished.", "warn");
        markIncomplete(live, "Stopped: this partial text was not checked against your documents.");
      }
    } else {
      say(status, describe(error), "error");
      if (error instanceof ApiError && error.status === 401) onUnauthorized();
      if (!live.textContent) answer.hidden = true;
    }
  } finally {
    if (mine === controller) {
      busy(false);
      controller = null;
    }
  }
}

function markIncomplete(live, message) {
  live.classList.remove("streaming");
  live.classList.add("incomplete");
  $("answer-body").append(el("p", { className: "incomplete-note", text: message }));
}

function finish(out) {
  current = out;
  const status = $("ask-status");
  const citations = new Map(out.citations.map((c) => [c.n, c]));
  renderMeta(out);
  const body = clear($("answer-body"));
  if (out.abstained) {
    body.append(
      el(
        "div",
        { className: "abstained" },
        el("p", { className: "abstained-title", text: "Not found in your documents" }),
        el("p", { className: "answer-text", text: out.answer }),
      ),
    );
    say(status, "No answer: your documents do not say.", "warn");
  } else {
    body.append(renderText(out, citations));
    say(status, `Answered with ${out.citations.length} citation${out.citations.length === 1 ? "" : "s"}.`, "ok");
  }
  renderNotes(out.notes || []);
  renderRemoved(out);
  renderSources(out.citations);
  $("feedback-form").hidden = false;
}

function confidence(groundedness) {
  if (groundedness === null || groundedness === undefined) return ["none", "No answer, so nothing to support"];
  if (groundedness >= 0.9) return ["high", "Well supported by the sources"];
  if (groundedness >= 0.6) return ["medium", "Partly supported by the sources"];
  return ["low", "Weakly supported by the sources"];
}

function renderMeta(out) {
  const [level, label] = confidence(out.abstained ? null : out.groundedness);
  const meta = clear($("answer-meta"));
  const pct = out.groundedness === null || out.groundedness === undefined ? null : Math.round(out.groundedness * 100);
  const box = el("div", { className: "confidence", "data-level": level });
  box.append(el("span", { className: "confidence-label", text: label }));
  if (pct !== null && !out.abstained) {
    box.append(
      el("meter", {
        id: "confidence-meter",
        min: 0,
        max: 100,
        low: 60,
        high: 90,
        optimum: 100,
        value: pct,
        "aria-label": "Share of the answer supported by quotes",
      }),
      el("span", { className: "confidence-value", text: `${pct}% of the answer is backed by quotes` }),
    );
  }
  const by = out.model === "extractive" ? "Quoted from your documents (extractive)" : `Written by ${out.model}, checked against quotes`;
  meta.append(box, el("p", { className: "model", text: by }));
}

/** The answer text with [n] markers as chips, and unsupported sentences (kept by a `mark` policy) flagged. */
function renderText(out, citations) {
  const text = out.answer;
  const flagged = [];
  for (const sentence of out.sentences || []) {
    if (sentence.supported || !sentence.text) continue;
    const at = text.indexOf(sentence.text);
    if (at >= 0) flagged.push([at, at + sentence.text.length]);
  }
  flagged.sort((a, b) => a[0] - b[0]);
  const paragraph = el("p", { className: "answer-text" });
  let pos = 0;
  for (const [start, end] of flagged) {
    if (start < pos) continue;
    append(paragraph, withChips(text.slice(pos, start), citations));
    paragraph.append(
      el(
        "span",
        { className: "unsupported" },
        el("span", { className: "unsupported-text", text: text.slice(start, end) }),
        el("span", { className: "tag", text: "not supported by the sources" }),
      ),
    );
    pos = end;
  }
  append(paragraph, withChips(text.slice(pos), citations));
  return paragraph;
}

function withChips(text, citations) {
  const nodes = [];
  for (const part of text.split(/(\[\d+\])/)) {
    const match = /^\[(\d+)\]$/.exec(part);
    const citation = match ? citations.get(Number(match[1])) : undefined;
    if (citation) nodes.push(chip(citation));
    else if (part) nodes.push(part);
  }
  return nodes;
}

function chip(citation) {
  const button = el("button", {
    type: "button",
    className: "chip",
    "data-n": citation.n,
    "aria-label": `Source ${citation.n}: ${citation.title || citation.source}`,
    title: citation.title || citation.source,
    text: String(citation.n),
  });
  button.addEventListener("click", () => openPassage(citation, button));
  return button;
}

function renderNotes(notes) {
  const box = clear($("answer-notes"));
  if (!notes.length) return;
  const list = el("ul", { className: "notes", "aria-label": "Notes about this answer" });
  for (const note of notes) {
    const fallback = note.startsWith(FALLBACK_NOTE);
    list.append(
      el(
        "li",
        { className: fallback ? "note fallback" : "note" },
        fallback ? "The language model is unavailable, so this answer is quoted from your documents. " : "",
        el("span", { className: "note-text", text: `Note: ${note}` }),
      ),
    );
  }
  box.append(list);
}

function renderRemoved(out) {
  const box = clear($("answer-removed"));
  const removed = (out.sentences || []).filter((s) => !s.supported && s.text && !out.answer.includes(s.text));
  if (!removed.length) return;
  box.append(
    el("h3", { text: `Removed: ${removed.length} sentence${removed.length === 1 ? "" : "s"} the sources do not support` }),
    el("ul", { className: "removed" }, removed.map((s) => el("li", { text: s.text }))),
  );
}

function where(item) {
  const parts = [];
  if (item.heading_path && item.heading_path.length) parts.push(item.heading_path.join(" › "));
  if (item.page) parts.push(`page ${item.page}`);
  parts.push(item.source);
  return parts.join(" · ");
}

function renderSources(citations) {
  const box = clear($("answer-sources"));
  if (!citations.length) return;
  const list = el("ol", { className: "sources" });
  for (const citation of citations) {
    const open = el("button", { type: "button", className: "source-open link-like" });
    open.append(el("span", { className: "chip static", "aria-hidden": "true", text: String(citation.n) }), " ", citation.title || citation.source);
    open.addEventListener("click", () => openPassage(citation, open));
    list.append(
      el(
        "li",
        {},
        open,
        el("p", { className: "where", text: where(citation) }),
        el("blockquote", { className: "quote", text: citation.quote }),
      ),
    );
  }
  box.append(el("h3", { text: "Sources" }), list);
}

async function openPassage(citation, opener) {
  const dialog = $("passage-dialog");
  $("passage-title").textContent = citation.title || citation.source;
  $("passage-where").textContent = where(citation);
  const box = clear($("passage-text"));
  box.append(el("p", { className: "status", text: "Loading the passage…" }));
  dialog.addEventListener("close", () => opener.focus(), { once: true });
  if (!dialog.open) dialog.showModal();
  const path =
    `/v1/documents/${encodeURIComponent(citation.doc_id)}/passage` +
    `?start=${encodeURIComponent(citation.start)}&end=${encodeURIComponent(citation.end)}`;
  try {
    const passage = await request("GET", path);
    $("passage-where").textContent = where(passage);
    const a = passage.quote_start - passage.start;
    const b = passage.quote_end - passage.start;
    const mark = el("mark", { id: "passage-quote", text: passage.text.slice(a, b) });
    clear(box).append(
      el(
        "p",
        { className: "passage-body" },
        passage.more_before ? "… " : "",
        passage.text.slice(0, a),
        mark,
        passage.text.slice(b),
        passage.more_after ? " …" : "",
      ),
    );
    mark.scrollIntoView({ block: "center" });
  } catch (error) {
    clear(box).append(
      el("p", { className: "status", "data-kind": "error", text: describe(error, "The cited document") }),
      el("p", { className: "passage-body" }, el("mark", { id: "passage-quote", text: citation.quote })),
    );
    if (error instanceof ApiError && error.status === 401) onUnauthorized();
  }
}

function resetFeedback() {
  rating = null;
  $("feedback-form").hidden = true;
  $("thumb-up").setAttribute("aria-pressed", "false");
  $("thumb-down").setAttribute("aria-pressed", "false");
  $("feedback-comment").value = "";
  $("feedback-send").disabled = true;
  say($("feedback-status"), "");
}

function choose(value) {
  rating = value;
  $("thumb-up").setAttribute("aria-pressed", String(value === "up"));
  $("thumb-down").setAttribute("aria-pressed", String(value === "down"));
  $("feedback-send").disabled = false;
}

async function sendFeedback() {
  const status = $("feedback-status");
  if (!current || !rating) {
    say(status, "Choose Helpful or Not helpful first.", "error");
    return;
  }
  const comment = $("feedback-comment").value.trim();
  try {
    await request("POST", "/v1/feedback", {
      json: { answer_id: current.answer_id, rating, comment: comment || null },
    });
    say(status, "Thank you: your feedback was recorded.", "ok");
    $("feedback-send").disabled = true;
  } catch (error) {
    say(status, describe(error, "This answer"), "error");
    if (error instanceof ApiError && error.status === 401) onUnauthorized();
  }
}
