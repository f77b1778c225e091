// Feedback on one answer of the thread: Helpful or Not helpful, an optional comment,
// sent as POST /v1/feedback with that answer's id.

import { ApiError, describe, request } from "./api.js";
import { el, say } from "./dom.js";

let forms = 0; // each form's comment box needs its own id, for its label

/** A feedback form for the answer `answerId`; `unauthorized` runs on a 401. */
export function feedbackForm(answerId, unauthorized) {
  const n = ++forms;
  let rating = null;
  const up = el("button", { type: "button", className: "quiet thumb", "aria-pressed": "false", text: "Helpful" });
  const down = el("button", { type: "button", className: "quiet thumb", "aria-pressed": "false", text: "Not helpful" });
  const comment = el("textarea", { id: `feedback-comment-${n}`, rows: 2, maxlength: 4000 });
  const send = el("button", { type: "submit", className: "feedback-send", disabled: true, text: "Send feedback" });
  const status = el("p", { className: "status feedback-status", role: "status", "aria-live": "polite" });
  // The comment box shows once a rating is chosen, so that each turn's form stays one line.
  const more = el(
    "div",
    { className: "feedback-more", hidden: true },
    el("label", { for: comment.id, text: "Comment (optional)" }),
    comment,
    send,
    status,
  );
  const form = el(
    "form",
    { className: "feedback" },
    el(
      "fieldset",
      {},
      el("legend", { text: "Was this answer helpful?" }),
      el("div", { className: "buttons" }, up, down),
      more,
    ),
  );
  const choose = (value) => {
    rating = value;
    more.hidden = false;
    up.setAttribute("aria-pressed", String(value === "up"));
    down.setAttribute("aria-pressed", String(value === "down"));
    send.disabled = false;
  };
  up.addEventListener("click", () => choose("up"));
  down.addEventListener("click", () => choose("down"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!rating) {
      say(status, "Choose Helpful or Not helpful first.", "error");
      return;
    }
    const text = comment.value.trim();
    try {
      await request("POST", "/v1/feedback", { json: { answer_id: answerId, rating, comment: text || null } });
      say(status, "Thank you: your feedback was recorded.", "ok");
      send.disabled = true;
    } catch (error) {
      say(status, describe(error, "This answer"), "error");
      if (error instanceof ApiError && error.status === 401) unauthorized();
    }
  });
  return form;
}
