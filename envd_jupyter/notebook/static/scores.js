// ScoresWidget: per scheduling cycle, endpoint × scorer (raw, weighted) and total, the endpoints
// filters removed, the pick, and shadow profiles' verdicts (same content as _tables.scores_html).
function number(value) {
  return typeof value === "number" && !Number.isInteger(value) ? String(Number(value.toPrecision(3))) : String(value);
}

function cycleView(cycle, shadow) {
  const scorers = cycle.scorers || [];
  const picked = new Set(cycle.picked || []);
  const heading = el("div", { style: "padding:4px 0" }, "profile ", el("b", { text: cycle.profile || "" }),
    `${shadow ? " (shadow)" : ""}: ${(cycle.candidates || []).length} candidates`);
  if (picked.size) {
    heading.append(" → picked ", el("b", { text: [...picked].join(", ") }), ` by ${cycle.picker || "the picker"}`);
  }
  const head1 = el("tr", {}, el("th", { rowspan: 2, text: "endpoint" }),
    ...scorers.map((s) => el("th", { colspan: 2, text: `${s.name} ×${number(s.weight)}` })),
    el("th", { rowspan: 2, text: "total" }));
  const head2 = el("tr", {}, ...scorers.flatMap(() => [el("th", { text: "raw" }), el("th", { text: "weighted" })]));
  const rows = Object.entries(cycle.scores || {}).map(([endpoint, score]) => el("tr",
    { class: picked.has(endpoint) ? "envd-picked" : null },
    el("td", { text: (picked.has(endpoint) ? "★ " : "") + endpoint }),
    ...scorers.flatMap((s) => [el("td", { text: number(score.scorers[s.name].raw) }),
      el("td", { text: number(score.scorers[s.name].weighted) })]),
    el("td", { text: number(score.total) })));
  const notes = (cycle.filters || []).filter((f) => f.removed && f.removed.length)
    .map((f) => `removed by ${f.filter}: ${f.removed.join(", ")}`);
  if (cycle.emptied_by) notes.push(`no endpoint left after ${cycle.emptied_by}`);
  if (cycle.error) notes.push(`error: ${cycle.error}`);
  return [heading, el("table", { class: "envd-table" }, el("thead", {}, head1, head2), el("tbody", {}, ...rows)),
    ...notes.map((text) => el("div", { class: "envd-muted", text }))];
}

function render({ model, el: host }) {
  host.classList.add("envd-widget", "envd-scores-widget");
  return watch(model, ["scores"], () => {
    const scores = model.get("scores") || {};
    const shadows = scores.shadows || {};
    const parts = [];
    if (scores.endpoint) {
      parts.push(el("div", { style: "font-weight:600",
        text: `scheduled on ${scores.endpoint} (profile ${scores.primary || ""})` }));
    }
    for (const cycle of scores.cycles || []) parts.push(...cycleView(cycle, cycle.profile in shadows));
    for (const [name, shadow] of Object.entries(shadows)) {
      const verdict = shadow.error ? `failed: ${shadow.error}` : shadow.agrees ? "agrees" : "disagrees";
      parts.push(el("div", { text: `shadow profile ${name} picked ${shadow.picked || "nothing"}: ${verdict}` }));
    }
    if (!parts.length) parts.push(el("div", { class: "envd-muted", text: "No scheduling decision" }));
    host.replaceChildren(...parts);
  });
}

export default { render };
