// ProgressWidget: one row per vertex (state, duration, cached, last log line); click a row for its
// last log lines. Rows are updated in place by digest, so a redraw costs only what changed. Python
// sends the vertices in build order (start time); "#" is the row's place in that order.
function render({ model, el: host }) {
  host.classList.add("envd-widget", "envd-progress-widget");
  const title = el("div", { style: "font-weight:600" });
  const summary = el("span", { class: "envd-status" });
  const fill = el("div", { style: "width:0%" });
  const body = el("tbody");
  const table = el("table", { class: "envd-table" },
    el("thead", {}, el("tr", {}, ...["#", "vertex", "state", "duration", "cached", "last log line"]
      .map((h) => el("th", { text: h })))),
    body);
  host.append(el("div", { class: "envd-toolbar" }, title, summary), el("div", { class: "envd-bar" }, fill),
    el("div", { class: "envd-progress-table envd-panel" }, table));
  const rows = new Map(); // digest -> {row, cells, logRow, open}

  function rowFor(vertex) {
    let entry = rows.get(vertex.digest);
    if (entry) return entry;
    const cells = ["index", "name", "state", "duration", "cached", "last"].map((k) => el("td", { "data-k": k }));
    const row = el("tr", { class: "envd-row", "data-digest": vertex.digest }, ...cells);
    const logCell = el("td", { colspan: 6 });
    const logRow = el("tr", { class: "envd-log-row", hidden: true }, logCell);
    entry = { row, cells, logRow, logCell, open: null };
    row.addEventListener("click", () => {
      entry.open = !isOpen(entry, stateOf(entry.vertex));
      update(entry, entry.vertex, entry.position);
    });
    rows.set(vertex.digest, entry);
    return entry;
  }

  // A failed vertex shows its logs until the user closes them; others on click.
  function isOpen(entry, state) {
    return entry.open === null ? state === "failed" : entry.open;
  }

  function update(entry, vertex, position) {
    const styles = model.get("styles");
    const state = stateOf(vertex);
    const [index, name, stateCell, duration, cached, last] = entry.cells;
    entry.vertex = vertex;
    entry.position = position;
    index.textContent = String(position);
    name.textContent = truncate(vertex.name || vertex.digest, 80);
    name.title = vertex.name || vertex.digest;
    stateCell.replaceChildren(chip(state, styles));
    duration.textContent = state === "running" ? "running…" : durationText(vertex);
    cached.textContent = vertex.cached ? "✓" : "";
    const tail = vertex.log_tail || [];
    last.replaceChildren(el("div", { class: "envd-last-line", text: vertex.error || tail[tail.length - 1] || "" }));
    const open = isOpen(entry, state) && (tail.length > 0 || Boolean(vertex.error));
    entry.logRow.hidden = !open;
    if (open) entry.logCell.replaceChildren(logBlock(vertex));
  }

  function redraw() {
    const vertices = model.get("vertices") || [];
    const seen = new Set();
    const ordered = [];
    for (const [i, vertex] of vertices.entries()) {
      const entry = rowFor(vertex);
      update(entry, vertex, i + 1);
      seen.add(vertex.digest);
      ordered.push(entry.row, entry.logRow);
    }
    for (const digest of [...rows.keys()]) if (!seen.has(digest)) rows.delete(digest);
    body.replaceChildren(...ordered);
    const s = model.get("summary") || {};
    const total = s.total ?? vertices.length;
    const finished = vertices.filter((v) => ["done", "cached", "failed"].includes(stateOf(v))).length;
    summary.textContent = s.line || ""; // worded by _tables.summary_line
    fill.style.width = `${total ? (100 * finished) / total : 0}%`;
    title.textContent = model.get("title");
  }

  const stop = watch(model, ["vertices", "summary", "title"], redraw);
  return stop;
}

export default { render };
