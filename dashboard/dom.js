// Building the page: every element is made with DOM calls, and every string from outside
// (job names, params, log lines, worker names, messages) goes in as text (textContent,
// createTextNode, property assignment), never as HTML.
"use strict";

export const $ = (sel, root = document) => root.querySelector(sel);

/**
 * Creates an element. `props`: class, text, title, href, type, value, placeholder, disabled, on*
 * (listeners), dataset, style (object), attrs (object of safe attributes). Children: nodes or
 * strings (as text).
 */
export function h(tag, props, ...children) {
  const e = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = String(v);
      else if (k === "for") e.htmlFor = v;
      else if (k === "style") Object.assign(e.style, v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k === "attrs") for (const [a, av] of Object.entries(v)) e.setAttribute(a, String(av));
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e[k] = v;
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Replaces an element's children, skipping null / false (which replaceChildren would print). */
export function put(e, ...children) {
  e.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return e;
}

/** A debounced call: runs `fn` once, `ms` after the last request. */
export function debounce(fn, ms) {
  let t = null;
  const d = () => {
    clearTimeout(t);
    t = setTimeout(fn, ms);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}

/** A card with a title, tools beside it (buttons, filters) and a body to fill. */
export function section(title, ...extra) {
  const body = h("div", { class: "section-body" });
  const el = h("section", { class: "card" }, h("div", { class: "section-head" }, h("h2", { text: title }), h("div", { class: "section-tools" }, ...extra)), body);
  return { el, body };
}

/** A definition list of [key, value] rows (null rows skipped; values as text unless nodes). */
export function kv(rows) {
  return h("dl", { class: "kv" }, ...rows.filter(Boolean).flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v instanceof Node ? v : String(v ?? "–"))]));
}

/** A passing message in the corner; errors stay longer. */
export function toast(msg, kind = "info") {
  const t = h("div", { class: `toast ${kind}`, text: msg, attrs: { role: "status" } });
  $("#toasts").append(t);
  setTimeout(() => t.remove(), kind === "error" ? 8000 : 4000);
}
