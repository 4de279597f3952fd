// Small helpers for building the page. Text always goes in as text nodes, never as HTML, since
// names, status texts and messages come from other people.

export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const item of children.flat()) {
    if (item === null || item === undefined || item === false) continue;
    node.append(item instanceof Node ? item : String(item));
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

let announceTimer = null;

/** Reads a short notice out to screen reader users (the polite live region). */
export function announce(message) {
  const region = $("#live");
  // Clearing first makes a repeated identical notice be read again.
  region.textContent = "";
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    region.textContent = message;
  }, 50);
}

/** Who a list row is about: their name with the address beneath it, or the address alone. */
export function who(name, jid) {
  return h(
    "span",
    { class: "person-who" },
    name ? h("span", { class: "person-name" }, name) : null,
    h("span", { class: name ? "person-jid is-secondary" : "person-jid" }, jid),
  );
}

export function initials(text) {
  const parts = text.split(/[\s._@-]+/).filter(Boolean);
  return ((parts[0]?.[0] || "?") + (parts[1]?.[0] || "")).toUpperCase();
}

/** A short-lived status note beside a form's buttons. */
export function flash(node, message, kind = "ok") {
  node.textContent = message;
  node.dataset.kind = kind;
}
