// DAGWidget: draws the Python layout (_layout.py) as SVG, recolours nodes from `vertices`,
// shows a clicked node's op, source line and logs, and expands/folds chains through `expanded`.
// While stepping, `marks` outlines the paused vertex and dots the breakpoints; `reasons` lists
// beside the graph which steps ran, which came from cache, and the first change that made each run.
const LEGEND_STATES = ["pending", "running", "cached", "done", "failed"];
const LIST_LABEL_CHARS = 64;

function render({ model, el: host }) {
  host.classList.add("envd-widget", "envd-dag-widget");
  const status = el("span", { class: "envd-status" });
  const canvas = el("div", { class: "envd-canvas envd-panel" });
  const details = el("div", { class: "envd-details envd-panel", hidden: true });
  const reasons = el("div", { class: "envd-reasons envd-panel", hidden: true });
  let scale = 1;
  let fitted = false;
  let nodes = new Map(); // layout node id -> {node, group, rect, text, title}

  const zoom = (factor) => () => {
    scale = Math.min(4, Math.max(0.05, scale * factor));
    resize();
  };
  const fit = () => {
    const layout = model.get("graph_layout");
    const width = canvas.clientWidth - 4;
    if (width > 0 && layout.width) scale = Math.min(1, width / layout.width);
    resize();
  };
  const legend = el("span", { class: "envd-legend" });
  const toolbar = el(
    "div",
    { class: "envd-toolbar" },
    button("−", zoom(1 / 1.25), "zoom out"),
    button("+", zoom(1.25), "zoom in"),
    button("fit", fit, "fit the width"),
    button("1:1", () => { scale = 1; resize(); }, "actual size"),
    legend,
    status,
  );
  host.append(toolbar, el("div", { class: "envd-dag-body" }, canvas, reasons, details));

  function resize() {
    const svg = canvas.querySelector("svg");
    const layout = model.get("graph_layout");
    if (!svg) return;
    svg.setAttribute("width", Math.max(1, layout.width * scale));
    svg.setAttribute("height", Math.max(1, layout.height * scale));
  }

  function draw() {
    const layout = model.get("graph_layout");
    const svg = svgEl("svg", {
      viewBox: `0 0 ${Math.max(1, layout.width)} ${Math.max(1, layout.height)}`,
      role: "img",
      "aria-label": "build graph",
    });
    nodes = new Map();
    if (layout.mode === "dag") {
      for (const edge of layout.edges) {
        if (edge.points.length < 2) continue;
        const [x, y] = edge.points[edge.points.length - 1];
        svg.append(
          svgEl("path", { class: "envd-edge", d: edgePath(edge.points) }),
          svgEl("polygon", { class: "envd-arrow", points: `${x},${y} ${x - 3.5},${y - 7} ${x + 3.5},${y - 7}` }),
        );
      }
    }
    for (const node of layout.nodes) {
      const group = svgEl("g", { class: "envd-node", "data-id": node.id });
      const title = svgEl("title");
      const list = layout.mode !== "dag";
      const rect = svgEl("rect", {
        x: node.x, y: node.y, rx: list ? 3 : 6, height: node.height, width: list ? 12 : node.width,
        "stroke-dasharray": node.kind === "chain" ? "5 3" : null,
      });
      const text = svgEl("text", list
        ? { x: node.x + 20, y: node.y + node.height / 2 + 4, class: "envd-ink",
            text: truncate(node.name, LIST_LABEL_CHARS) }
        : { x: node.x + node.width / 2, y: node.y + node.height / 2 + 4, "text-anchor": "middle",
            text: node.label });
      const paused = svgEl("rect", {
        class: "envd-paused", x: node.x - 4, y: node.y - 4, rx: 9, height: node.height + 8,
        width: (list ? 12 : node.width) + 8,
      });
      const dot = svgEl("circle", { class: "envd-breakpoint", cx: node.x + 1, cy: node.y + 1, r: 5 });
      group.append(title, rect, text, paused, dot);
      group.addEventListener("click", () => select(node.id));
      svg.append(group);
      nodes.set(node.id, { node, group, rect, text, title, list });
    }
    canvas.replaceChildren(svg);
    resize();
    recolour();
    autoFit(60);
  }

  // Once, when the canvas first has a width (it has none until the output is attached):
  // a graph wider than the canvas starts fitted to it.
  function autoFit(frames) {
    if (fitted) return;
    if (canvas.clientWidth === 0) {
      if (frames > 0) requestAnimationFrame(() => autoFit(frames - 1));
      return;
    }
    fitted = true;
    if (model.get("graph_layout").width > canvas.clientWidth) fit();
  }

  function stateOfNode(node, vertices) {
    if (node.members) return combinedState(node.members.map((m) => stateOf(vertices[m.id])));
    return stateOf(vertices[node.id]);
  }

  function recolour() {
    const vertices = model.get("vertices") || {};
    const styles = model.get("styles");
    const marks = model.get("marks") || {};
    const breakpoints = new Set(marks.breakpoints || []);
    let pausedAt = "";
    const counts = Object.fromEntries(LEGEND_STATES.map((s) => [s, 0]));
    for (const { node, group, rect, text, title, list } of nodes.values()) {
      const state = stateOfNode(node, vertices);
      const style = styles[state];
      group.setAttribute("data-state", state);
      rect.setAttribute("fill", style.fill);
      rect.setAttribute("stroke", style.stroke);
      rect.setAttribute("stroke-width", node.head && state !== "cached" ? 2.5 : style.width);
      if (!list) text.setAttribute("fill", style.text);
      title.textContent = tooltip(node, state, vertices[node.id]);
      group.classList.toggle("envd-selected", node.id === model.get("selected"));
      const ids = (node.members || [node]).map((m) => m.id);
      const paused = ids.includes(marks.current);
      toggleData(group, "paused", paused);
      toggleData(group, "breakpoint", ids.some((id) => breakpoints.has(id)));
      if (paused) pausedAt = `${state === "failed" ? "failed" : "paused"} at ${node.name}`;
      for (const member of node.members || [node]) counts[stateOf(vertices[member.id])] += 1;
    }
    const layout = model.get("graph_layout");
    status.textContent = LEGEND_STATES.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(" · ")
      + (layout.reason ? ` — ${layout.reason}` : "") + (pausedAt ? ` — ${pausedAt}` : "");
    showDetails();
  }

  function toggleData(node, name, on) {
    if (on) node.setAttribute(`data-${name}`, "true");
    else node.removeAttribute(`data-${name}`);
  }

  function drawReasons() {
    const rows = model.get("reasons") || [];
    reasons.hidden = rows.length === 0;
    const tally = ["ran", "cached", "failed"].map((s) => [s, rows.filter((r) => r.status === s).length])
      .filter(([s, n]) => n || s !== "failed").map(([s, n]) => `${n} ${s}`).join(" · ");
    const items = rows.map((row) => el("li", { class: "envd-reason", "data-status": row.status },
      el("span", { class: `envd-reason-status envd-reason-${row.status}`, text: row.status }), " ",
      el("span", { class: "envd-link", text: row.name, onclick: () => select(row.digest) }),
      row.status === "cached" ? null : el("div", { class: "envd-muted", text: row.reason })));
    reasons.replaceChildren(el("div", { class: "envd-reasons-head", text: `Rebuild reasons · ${tally}` }),
      el("ul", {}, ...items));
  }

  function tooltip(node, state, vertex) {
    const lines = [node.name, `${node.kind} · ${state}` + (vertex && typeof vertex.duration === "number"
      ? ` · ${vertex.duration.toFixed(2)} s` : "")];
    if (node.location) lines.push(node.location);
    if (node.members) lines.push(`click to see the ${node.members.length} steps`);
    return lines.join("\n");
  }

  function select(id) {
    model.set("selected", model.get("selected") === id ? "" : id);
    model.save_changes();
  }

  function setExpanded(ids) {
    model.set("expanded", ids);
    model.save_changes();
  }

  function showDetails() {
    const entry = nodes.get(model.get("selected"));
    details.hidden = !entry;
    if (!entry) return;
    const { node } = entry;
    const vertices = model.get("vertices") || {};
    const styles = model.get("styles");
    const vertex = vertices[node.id] || {};
    const state = stateOfNode(node, vertices);
    const header = el("div", { class: "envd-toolbar" }, chip(state, styles),
      el("span", { class: "envd-muted", text: [node.kind, durationText(vertex)].filter(Boolean).join(" · ") }),
      el("span", { style: "flex:1" }), button("×", () => select(node.id), "close"));
    const facts = el("dl");
    const fact = (name, value) => value && facts.append(el("dt", { text: name }), el("dd", { text: value }));
    fact("source", node.location);
    if (!node.members) fact("digest", node.id);
    for (const [key, value] of Object.entries(node.attrs || {})) fact(key, value);
    const parts = [header, el("h4", { text: node.name }), facts];
    const inputs = model.get("graph_layout").edges.filter((e) => e.target === node.id).map((e) => e.source);
    if (inputs.length) {
      parts.push(el("div", { class: "envd-muted", text: "inputs" }),
        el("ul", { class: "envd-members" }, ...inputs.map((id) => linkTo(id))));
    }
    if (node.members) {
      parts.push(button(`expand ${node.members.length} steps`, () =>
        setExpanded([...model.get("expanded"), node.id])));
      parts.push(el("ol", { class: "envd-members" }, ...node.members.map((m) => el("li", {},
        chip(stateOf(vertices[m.id]), styles), " ", m.name))));
    }
    if (node.chain) {
      parts.push(button("fold this chain", () => {
        model.set("selected", "");
        setExpanded(model.get("expanded").filter((id) => id !== node.chain));
      }));
    }
    parts.push(logBlock(vertex));
    details.replaceChildren(...parts.filter(Boolean));
  }

  function linkTo(id) {
    const entry = nodes.get(id);
    return el("li", {}, el("span", { class: "envd-link", text: entry ? entry.node.name : id, onclick: () => select(id) }));
  }

  for (const state of LEGEND_STATES) legend.append(chip(state, model.get("styles")), " ");
  const stepLegend = el("span", { class: "envd-step-legend", hidden: true },
    el("span", { class: "envd-chip envd-chip-paused", text: "paused here" }), " ",
    el("span", { class: "envd-chip envd-chip-breakpoint", text: "● breakpoint" }));
  legend.append(stepLegend);
  const showStepLegend = () => { stepLegend.hidden = Object.keys(model.get("marks") || {}).length === 0; };
  const stops = [watch(model, ["graph_layout"], draw), watch(model, ["vertices", "selected", "marks"], recolour),
    watch(model, ["reasons"], drawReasons), watch(model, ["marks"], showStepLegend)];
  return () => stops.forEach((stop) => stop());
}

export default { render };
