// A tiny, safe subset of Markdown for passages: headings, list bullets, **bold** and `code`.
// Every piece of text becomes a text node inside elements this code creates; nothing is parsed
// as HTML, and links and images stay as their literal text.

import { el } from "./dom.js";

const HEADING = /^(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$/;
const BULLET = /^([ \t]*)[-*+][ \t]+/;
const INLINE = /(\*\*[^*\n]+\*\*|`[^`\n]+`)/;

function inline(text) {
  return text
    .split(INLINE)
    .filter((part) => part !== "")
    .map((part) => {
      if (part.length > 4 && part.startsWith("**") && part.endsWith("**")) return el("strong", { text: part.slice(2, -2) });
      if (part.length > 2 && part.startsWith("`") && part.endsWith("`")) return el("code", { text: part.slice(1, -1) });
      return part;
    });
}

/**
 * Nodes for `text`, formatted line by line. `atLineStart`: the text begins a line (a heading or
 * bullet marker is only one at the start of a line; a highlight may begin mid-line).
 */
export function formatted(text, atLineStart = true) {
  const nodes = [];
  text.split("\n").forEach((line, index) => {
    if (index > 0) nodes.push("\n");
    const starts = index > 0 || atLineStart;
    const heading = starts ? HEADING.exec(line) : null;
    if (heading) {
      nodes.push(el("strong", { className: "md-heading", "data-level": heading[1].length }, inline(heading[2])));
      return;
    }
    const bullet = starts ? BULLET.exec(line) : null;
    if (bullet) {
      nodes.push(`${bullet[1]}• `, ...inline(line.slice(bullet[0].length)));
      return;
    }
    nodes.push(...inline(line));
  });
  return nodes;
}
