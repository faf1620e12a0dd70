// Shared helpers, prepended to each widget's module by _widgets.py (no bundler, no CDN).
// Text from a build only ever reaches the page through textContent or attributes, never innerHTML.
const SVG_NS = "http://www.w3.org/2000/svg";
const STATES = ["pending", "running", "cached", "done", "failed"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
}

function stateOf(vertex) {
  const state = typeof vertex === "string" ? vertex : vertex && vertex.state;
  return STATES.includes(state) ? state : "pending";
}

// One state for a folded chain (same rule as _svg.combined_state).
function combinedState(states) {
  const seen = new Set(states);
  for (const state of ["failed", "running", "pending", "done"]) {
    if (seen.has(state)) return state;
  }
  return seen.size ? "cached" : "pending";
}

function chip(state, styles) {
  const style = styles[state] || {};
  return el("span", {
    class: "envd-chip",
    style: `background:${style.fill};color:${style.text};border-color:${style.stroke}`,
    text: state,
  });
}

function durationText(vertex) {
  return vertex && typeof vertex.duration === "number" ? `${vertex.duration.toFixed(2)} s` : "";
}

function truncate(text, limit) {
  return text.length <= limit ? text : text.slice(0, limit - 1) + "…";
}

function logBlock(vertex) {
  const lines = [...((vertex && vertex.log_tail) || [])];
  if (vertex && vertex.error) lines.push(`error: ${vertex.error}`);
  return lines.length ? el("pre", { class: "envd-log", text: lines.join("\n") }) : null;
}

// The failure view's nodes from _failure_view.failure_facts: the stepper's and %%envd's (failure.js).
function failureView(info) {
  const code = info.exit_code === null || info.exit_code === undefined ? "" : ` with exit code ${info.exit_code}`;
  return [
    el("h4", { text: `✗ step '${info.step}' failed${code}` }),
    info.location ? el("div", { class: "envd-muted", text: `made by ${info.location}` }) : null,
    info.log_tail && info.log_tail.length ? el("pre", { class: "envd-log", text: info.log_tail.join("\n") }) : null,
    info.note ? el("div", { class: "envd-failure-note", text: info.note }) : null,
  ].filter(Boolean);
}

function button(label, onclick, title) {
  return el("button", { class: "envd-button", type: "button", text: label, title, onclick });
}

// Path data through points with vertical tangents (same curve as _svg.edge_path).
function edgePath(points) {
  let [x, y] = points[0];
  const parts = [`M${x},${y}`];
  for (const [x1, y1] of points.slice(1)) {
    const middle = (y + y1) / 2;
    parts.push(`C${x},${middle} ${x1},${middle} ${x1},${y1}`);
    [x, y] = [x1, y1];
  }
  return parts.join(" ");
}

// Calls fn(model) now and whenever any of names changes; returns the unsubscribe function.
function watch(model, names, fn) {
  const handler = () => fn(model);
  for (const name of names) model.on(`change:${name}`, handler);
  handler();
  return () => {
    for (const name of names) model.off(`change:${name}`, handler);
  };
}
