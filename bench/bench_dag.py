"""DAG render time at 100 / 1,000 / 5,000 vertices: our layout + SVG vs Graphviz ``dot`` on the same graph.

Two graph shapes, both in the ``Definition.to_graph()`` form the widgets get:
- "build": each step reads a recent step (an exponential distance back), 15% also read one of
  the 40 steps before (copies/merges across branches): deep, branchy, few long chains;
- "wide": one base, N/2 branches of two steps each, one merge of all of them (the marshal
  bench's wide shape).
Ours: ``layout_graph`` with the widget's defaults (chains fold past 12, a list past 2,000 vertices)
plus ``render_svg`` (the static picture), best of 3; at 5,000 also the full layered layout forced
(``max_nodes`` unbounded) to show what the list fallback avoids. Browser: the DAG widget's
JavaScript drawing that layout in headless Chromium (if installed), timed in the page.
Peer: ``dot -Tsvg`` on the same graph (labels as ours), one run, 60 s timeout.
Target (issue 12): 1,000 vertices rendered in <= 1 s.

Run: python -m bench.bench_dag [--dot-timeout 60]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench._results import write_section
from envd_jupyter.notebook._layout import layout_graph
from envd_jupyter.notebook._svg import STATE_STYLES, render_svg
from envd_jupyter.notebook._widgets import STATIC

SECTION = "notebook-dag-render"
SIZES = (100, 1000, 5000)
REPEATS = 3


def node(i: int, name: str, kind: str = "exec") -> dict:
    return {"id": f"sha256:{i:08x}", "kind": kind, "name": name, "location": f"cell-1:{i}", "attrs": {}}


def build_shaped(count: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    nodes = [node(0, "image debian:bookworm", "image")]
    edges = []
    for i in range(1, count):
        nodes.append(node(i, f"[envd] sh -c 'make step-{i}'"))
        edges.append((max(0, i - 1 - int(rng.expovariate(0.3))), i))
        if i > 2 and rng.random() < 0.15:
            edges.append((rng.randrange(max(0, i - 40), i - 1), i))
    return as_graph(nodes, edges)


def wide(count: int) -> dict:
    branches = (count - 2) // 2
    nodes = [node(0, "image busybox:latest", "image")]
    edges = []
    for b in range(branches):
        nodes += [node(1 + 2 * b, f"sh -c 'echo {b} > /f{b}'"), node(2 + 2 * b, f"mkdir /d{b}", "file")]
        edges += [(0, 1 + 2 * b), (1 + 2 * b, 2 + 2 * b)]
    merge = len(nodes)
    nodes.append(node(merge, "merge", "merge"))
    edges += [(2 + 2 * b, merge) for b in range(branches)]
    return as_graph(nodes, edges)


def as_graph(nodes: list[dict], edges: list[tuple[int, int]]) -> dict:
    return {"version": 1, "head": nodes[-1]["id"], "nodes": nodes,
            "edges": [{"source": nodes[s]["id"], "target": nodes[t]["id"], "index": 0} for s, t in edges]}


def ours(graph: dict, max_nodes: int) -> tuple[float, float, dict]:
    """Best layout seconds, best layout+SVG seconds, and the layout."""
    layouts, totals = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        layout = layout_graph(graph, max_nodes=max_nodes)
        middle = time.perf_counter()
        render_svg(layout)
        totals.append(time.perf_counter() - start)
        layouts.append(middle - start)
    return min(layouts), min(totals), layout


def to_dot(graph: dict) -> str:
    lines = ["digraph g {", '  node [shape=box, style="rounded,filled", fontsize=12];']
    lines += [f'  "{n["id"]}" [label={json.dumps(n["name"][:32])}];' for n in graph["nodes"]]
    lines += [f'  "{e["source"]}" -> "{e["target"]}";' for e in graph["edges"]]
    return "\n".join(lines + ["}"])


def dot_seconds(graph: dict, timeout: float) -> float | None:
    """Wall time of ``dot -Tsvg`` on ``graph``; None if it ran past ``timeout``."""
    start = time.perf_counter()
    try:
        subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=to_dot(graph), text=True, check=True,
                       capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - start


def browser_seconds(layout: dict, chromium: str) -> float | None:
    """The DAG widget's JavaScript drawing ``layout`` in headless Chromium, timed inside the page."""
    module = (STATIC / "common.js").read_text() + (STATIC / "dag.js").read_text()
    module = module.replace("export default {", "const dagWidget = {")
    state = {"graph_layout": layout, "vertices": {}, "styles": STATE_STYLES, "selected": "", "expanded": []}
    state_json = json.dumps(state).replace("</", "<\\/")  # inside <script>: no early "</script>"
    page = f"""<!doctype html><html><head><meta charset=utf-8><style>{(STATIC / "widgets.css").read_text()}</style>
</head><body><div id=dag></div><script type=module>
{module}
const state = {state_json};
const model = {{ get: (k) => state[k], set() {{}}, save_changes() {{}}, on() {{}}, off() {{}}, send() {{}} }};
const start = performance.now();
dagWidget.render({{ model, el: document.getElementById("dag") }});
document.body.getBoundingClientRect();  // force layout of what was drawn
document.body.dataset.ms = String(performance.now() - start);
</script></body></html>"""
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "dag.html"
        path.write_text(page)
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                              "--disable-component-update", "--disable-sync", "--dump-dom", path.as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-ms="([0-9.]+)"', dom)
    return float(found.group(1)) / 1000 if found else None


def fmt(seconds: float | None, timeout: float) -> str:
    if seconds is None:
        return f"> {timeout:.0f} s (timed out)"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dot-timeout", type=float, default=60.0)
    args = parser.parse_args()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    dot = shutil.which("dot")
    chromium = shutil.which("chromium")
    rows = []
    for shape, make in (("build", build_shaped), ("wide", wide)):
        for size in SIZES:
            graph = make(size)
            layout_s, total_s, layout = ours(graph, 2000)
            draw_s = browser_seconds(layout, chromium) if chromium else None
            forced = ours(graph, 10**9)[:2] if layout["mode"] == "list" else None
            peer = dot_seconds(graph, args.dot_timeout) if dot else None
            note = f"{layout['mode']}, {len(layout['nodes'])} drawn"
            if forced:
                note += f"; full layered layout forced: {fmt(forced[0], 0)} (+SVG {fmt(forced[1], 0)})"
            widget_s = total_s + draw_s if draw_s is not None else None
            rows.append(f"| {shape} | {len(graph['nodes']):,} | {fmt(layout_s, 0)} | {fmt(total_s, 0)} | "
                        f"{fmt(draw_s, 0) if chromium else 'n/a'} | {fmt(widget_s, 0) if widget_s else 'n/a'} | "
                        f"{fmt(peer, args.dot_timeout) if dot else 'n/a (no dot)'} | {note} |")
            print(rows[-1], flush=True)
    version = subprocess.run(["dot", "-V"], capture_output=True, text=True).stderr.strip() if dot else "not installed"
    markdown = "\n".join([
        "## Notebook: DAG render (bench/bench_dag.py)",
        "",
        "Our pure-Python layered layout (chains fold past 12 vertices, a list past 2,000) and the static SVG,",
        "best of 3; the DAG widget's JavaScript drawing that layout in headless Chromium; Graphviz `dot -Tsvg`",
        f"on the same graph as the peer ({version}, one run, {args.dot_timeout:.0f} s timeout).",
        "Widget total = layout + SVG (the widget's static fallback is rendered when it is displayed) + browser",
        "draw; JSON transfer to the browser is not included. Target: 1,000 vertices rendered in <= 1 s.",
        f"Load average when the run started: {load} (2 cores shared with other work).",
        "",
        "| shape | vertices | layout | layout + SVG | browser draw | widget total | dot -Tsvg | layout |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    write_section(SECTION, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
