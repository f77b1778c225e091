// The Documents view: upload (drag and drop or a file picker, several files), live job
// progress, the list with search and a type filter, and delete with confirmation.

import { ApiError, describe, request } from "./api.js";
import { $, clear, el, say } from "./dom.js";

const TYPE_NAMES = {
  "application/pdf": "PDF",
  "text/markdown": "Markdown",
  "text/plain": "Text",
  "text/html": "HTML",
  "text/csv": "CSV",
  "application/json": "JSON",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel",
};

const JOB_LABELS = { queued: "Waiting to be read…", running: "Reading and indexing…" };

let documents = [];
let onUnauthorized = () => {};

export function initDocuments({ unauthorized }) {
  onUnauthorized = unauthorized;
  const zone = $("dropzone");
  const input = $("file-input");
  input.addEventListener("change", () => {
    uploadAll([...input.files]);
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    uploadAll([...(event.dataTransfer?.files || [])]);
  });
  $("doc-search").addEventListener("input", render);
  $("doc-type").addEventListener("change", render);
  $("doc-refresh").addEventListener("click", () => loadDocuments());
}

function failed(error, what, status) {
  say(status, describe(error, what), "error");
  if (error instanceof ApiError && error.status === 401) onUnauthorized();
}

export async function loadDocuments() {
  const status = $("doc-status");
  say(status, "Loading…", "busy");
  try {
    const body = await request("GET", "/v1/documents");
    documents = body.documents;
    fillTypes();
    render();
  } catch (error) {
    documents = [];
    clear($("doc-list"));
    failed(error, "The document list", status);
  }
}

function typeName(mime) {
  return TYPE_NAMES[mime] || mime;
}

function fillTypes() {
  const select = $("doc-type");
  const chosen = select.value;
  const types = [...new Set(documents.map((d) => d.mime_type))].sort();
  clear(select).append(el("option", { value: "", text: "All types" }));
  for (const type of types) select.append(el("option", { value: type, text: typeName(type) }));
  select.value = types.includes(chosen) ? chosen : "";
}

function visible() {
  const words = $("doc-search").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const type = $("doc-type").value;
  return documents.filter((doc) => {
    if (type && doc.mime_type !== type) return false;
    const haystack = `${doc.title} ${doc.source}`.toLowerCase();
    return words.every((word) => haystack.includes(word));
  });
}

function render() {
  const list = clear($("doc-list"));
  const shown = visible();
  for (const doc of shown) list.append(card(doc));
  const total = documents.length;
  let message;
  if (!total) message = "No documents yet. Add some above.";
  else if (shown.length === total) message = `${total} document${total === 1 ? "" : "s"}.`;
  else message = `Showing ${shown.length} of ${total} documents.`;
  say($("doc-status"), message);
}

function readers(acl) {
  if (!acl.users.length && !acl.groups.length) return "Readable by everyone in your tenant";
  const parts = [];
  if (acl.users.length) parts.push(`users ${acl.users.join(", ")}`);
  if (acl.groups.length) parts.push(`groups ${acl.groups.join(", ")}`);
  return `Readable by ${parts.join("; ")}`;
}

function card(doc) {
  const title = doc.title || doc.source;
  const remove = el("button", {
    type: "button",
    className: "danger quiet",
    "aria-label": `Delete “${title}”`,
    text: "Delete",
  });
  remove.addEventListener("click", () => confirmDelete(doc, remove));
  const updated = new Date(doc.updated_at);
  return el(
    "li",
    { className: "doc", "data-doc-id": doc.doc_id },
    el(
      "div",
      { className: "doc-main" },
      el("h3", { className: "doc-title", text: title }),
      el("p", { className: "where", text: doc.source }),
      el(
        "p",
        { className: "doc-meta" },
        `${typeName(doc.mime_type)} · ${doc.chunks} passage${doc.chunks === 1 ? "" : "s"} · updated `,
        el("time", { datetime: doc.updated_at, text: updated.toLocaleString() }),
        ` · ${readers(doc.acl)}`,
      ),
    ),
    remove,
  );
}

function confirmDelete(doc, opener) {
  const dialog = $("confirm-dialog");
  const title = doc.title || doc.source;
  $("confirm-text").textContent = `“${title}” will be deleted for everyone who can read it. This cannot be undone.`;
  const yes = $("confirm-yes");
  const no = $("confirm-no");
  const done = async (confirmed) => {
    yes.onclick = null;
    no.onclick = null;
    dialog.close();
    opener.focus();
    if (!confirmed) return;
    const status = $("doc-status");
    try {
      await request("DELETE", `/v1/documents/${encodeURIComponent(doc.doc_id)}`);
      await loadDocuments();
      say(status, `Deleted “${title}”.`, "ok");
    } catch (error) {
      failed(error, `“${title}”`, status);
    }
  };
  yes.onclick = () => done(true);
  no.onclick = () => done(false);
  dialog.addEventListener("cancel", () => done(false), { once: true });
  dialog.showModal();
  no.focus();
}

function uploadAll(files) {
  for (const file of files) upload(file);
}

async function upload(file) {
  const label = `“${file.name}”`;
  const text = el("span", { className: "upload-status", text: "Uploading…" });
  const progress = el("progress", { "aria-label": `Progress of ${file.name}` });
  const item = el(
    "li",
    { className: "upload", "data-state": "uploading" },
    el("span", { className: "upload-name", text: file.name }),
    progress,
    text,
  );
  $("uploads").prepend(item);
  const set = (state, message) => {
    item.dataset.state = state;
    text.textContent = message;
    if (state === "succeeded" || state === "failed") progress.remove();
  };
  const form = new FormData();
  form.append("file", file, file.name);
  let accepted;
  try {
    accepted = await request("POST", "/v1/documents", { form });
  } catch (error) {
    set("failed", describe(error, label));
    if (error instanceof ApiError && error.status === 401) onUnauthorized();
    return;
  }
  set("queued", JOB_LABELS.queued);
  for (;;) {
    let job;
    try {
      job = await request("GET", `/v1/jobs/${encodeURIComponent(accepted.job_id)}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 429) {
        await sleep((error.retryAfter || 1) * 1000);
        continue;
      }
      set("failed", describe(error, label));
      return;
    }
    if (job.status === "succeeded") {
      set("succeeded", "Ready: you can ask about it now.");
      await loadDocuments();
      return;
    }
    if (job.status === "failed") {
      set("failed", `Could not be read: ${job.reason || "unknown reason"} (${job.error_code || "failed"})`);
      return;
    }
    set(job.status, JOB_LABELS[job.status] || job.status);
    await sleep(500);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
