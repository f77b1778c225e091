// Building DOM without HTML strings: every piece of document or answer text becomes a text
// node, so markup inside it (a <script>, a javascript: link) is shown, never run.

/**
 * Create an element. `attrs` sets attributes (never event handlers or URLs: those are refused),
 * `className` and `text`; `children` are nodes or strings (strings become text nodes).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "className") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (/^on|^(href|src|action|formaction|srcdoc)$/i.test(name)) {
      throw new Error(`refusing to set ${name} from page code`);
    } else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function $(id) {
  return document.getElementById(id);
}

/** Show a message in a live region (status text is read out by screen readers). */
export function say(node, message, kind = "") {
  node.textContent = message;
  node.dataset.kind = kind;
}
