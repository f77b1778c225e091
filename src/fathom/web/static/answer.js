// One answer of the thread: its text with [n] markers as citation chips, unsupported sentences,
// a confidence indicator, notes, the sources, and the cited passage in context.

import { ApiError, describe, request } from "./api.js";
import { $, append, clear, el } from "./dom.js";
import { formatted } from "./markdown.js";

const FALLBACK_NOTE = "LLM unavailable";

let onUnauthorized = () => {};

export function initAnswers({ unauthorized }) {
  onUnauthorized = unauthorized;
  $("passage-close").addEventListener("click", () => $("passage-dialog").close());
}

/** The empty parts of an answer, to stream into and then fill: `root` holds them all. */
export function answerParts() {
  const parts = {
    meta: el("div", { className: "answer-meta" }),
    body: el("div", { className: "answer-body", "aria-live": "off" }),
    notes: el("div", { className: "answer-notes" }),
    removed: el("div", { className: "answer-removed" }),
    sources: el("div", { className: "answer-sources" }),
  };
  parts.root = el("div", { className: "panel answer" }, Object.values(parts));
  return parts;
}

/** The finished answer (the API's `done` body) in place of the streamed text. */
export function renderAnswer(parts, out) {
  const citations = new Map(out.citations.map((c) => [c.n, c]));
  renderMeta(parts.meta, out);
  clear(parts.body).append(out.abstained ? abstention(out.answer) : renderText(out, citations));
  renderNotes(parts.notes, out.notes || []);
  renderRemoved(parts.removed, out);
  renderSources(parts.sources, out.citations);
  if (!out.abstained) parts.sources.append(copyButton(out.answer, out.citations));
}

/** A stored turn of a resumed conversation (`GET /v1/conversations/{id}`): no scores kept. */
export function renderStoredAnswer(parts, turn) {
  clear(parts.meta).append(el("p", { className: "model", text: byLine(turn.model) }));
  if (turn.redacted) {
    clear(parts.body).append(
      el("p", {
        className: "redacted",
        text: "This answer is no longer shown: a document it cited was deleted, or this key may not read it.",
      }),
    );
    return;
  }
  const citations = new Map(turn.citations.map((c) => [c.n, c]));
  clear(parts.body).append(turn.abstained ? abstention(turn.answer) : renderText(turn, citations));
  renderSources(parts.sources, turn.citations);
  if (!turn.abstained) parts.sources.append(copyButton(turn.answer, turn.citations));
}

/** The answer as plain text with its numbered sources and their quotes, for pasting elsewhere. */
export function answerWithCitations(answer, citations) {
  const lines = [answer.trim()];
  if (citations.length) {
    lines.push("", "Sources:");
    for (const c of citations) {
      lines.push(`[${c.n}] ${c.title || c.source} (${where(c)})`);
      if (c.quote) lines.push(`    “${c.quote}”`);
    }
  }
  return lines.join("\n");
}

function copyButton(answer, citations) {
  const button = el("button", { type: "button", className: "quiet copy-answer", text: "Copy answer with citations" });
  const note = el("span", { className: "copy-note", role: "status" });
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(answerWithCitations(answer, citations));
      note.textContent = "Copied.";
    } catch {
      note.textContent = "The browser did not allow copying. Select the text instead.";
    }
  });
  return el("p", { className: "copy" }, button, " ", note);
}

/** Streamed text that will not be checked: kept, marked, and `message` says why. */
export function markIncomplete(parts, live, message) {
  live.classList.remove("streaming");
  live.classList.add("incomplete");
  parts.body.append(el("p", { className: "incomplete-note", text: message }));
}

function abstention(text) {
  return el(
    "div",
    { className: "abstained" },
    el("p", { className: "abstained-title", text: "Not found in your documents" }),
    el("p", { className: "answer-text", text }),
  );
}

function byLine(model) {
  return model === "extractive" ? "Quoted from your documents (extractive)" : `Written by ${model}, checked against quotes`;
}

function confidence(groundedness) {
  if (groundedness === null || groundedness === undefined) return ["none", "No answer, so nothing to support"];
  if (groundedness >= 0.9) return ["high", "Well supported by the sources"];
  if (groundedness >= 0.6) return ["medium", "Partly supported by the sources"];
  return ["low", "Weakly supported by the sources"];
}

function renderMeta(meta, out) {
  const [level, label] = confidence(out.abstained ? null : out.groundedness);
  const pct = out.groundedness === null || out.groundedness === undefined ? null : Math.round(out.groundedness * 100);
  const box = el("div", { className: "confidence", "data-level": level });
  box.append(el("span", { className: "confidence-label", text: label }));
  if (pct !== null && !out.abstained) {
    box.append(
      el("meter", {
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
  clear(meta).append(box, el("p", { className: "model", text: byLine(out.model) }));
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

function renderNotes(box, notes) {
  clear(box);
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

function renderRemoved(box, out) {
  clear(box);
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

function renderSources(box, citations) {
  clear(box);
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
    // Markdown's markers (## headings, - bullets, **bold**) are formatted, not shown raw.
    const lineStart = (at) => at === 0 ? !passage.more_before : passage.text[at - 1] === "\n";
    const mark = el("mark", { id: "passage-quote" }, formatted(passage.text.slice(a, b), lineStart(a)));
    clear(box).append(
      el(
        "p",
        { className: "passage-body" },
        passage.more_before ? "… " : "",
        formatted(passage.text.slice(0, a), lineStart(0)),
        mark,
        formatted(passage.text.slice(b), lineStart(b)),
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
