// Building the page. Text is always set as text (textContent), never parsed as HTML:
// job output, names and messages cannot inject markup.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function field(label, control) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return el("div", { class: "field" }, el("label", { for: id, text: label }), control);
}

export function select(name, options, value) {
  const node = el("select", { name });
  for (const [optionValue, text] of options) {
    node.append(el("option", { value: optionValue, text, selected: optionValue === value }));
  }
  return node;
}

export function table(headers, rows, caption) {
  return el(
    "table",
    {},
    caption ? el("caption", { text: caption }) : null,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows),
  );
}

export function errorBox(error) {
  const box = el("div", { class: "error", role: "alert" }, el("strong", { text: error.message }));
  if (error.reason) box.append(el("span", { class: "reason", text: ` (${error.reason})` }));
  for (const v of error.fields || []) {
    box.append(el("div", { class: "violation", text: `${v.field}: ${v.description}` }));
  }
  return box;
}

export function saveBlob(parts, name, type = "application/octet-stream") {
  const url = URL.createObjectURL(new Blob(parts, { type }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
