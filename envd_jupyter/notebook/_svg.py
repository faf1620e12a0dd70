"""Static, self-contained SVG of a laid-out graph, coloured by vertex state.

This is what a notebook keeps when it is executed headless (nbclient drops widget views), and
the widget's ``text/html`` fallback. Colours come from ``STATE_STYLES``, which the DAG widget's
JavaScript also receives, so the live and the saved picture agree. Text colours follow
JupyterLab's CSS variables where a node has no fill of its own, with fallbacks for other viewers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from ._layout import truncate

STATES = ("pending", "running", "cached", "done", "failed")
STATE_STYLES: dict[str, dict[str, str]] = {
    "pending": {"fill": "#e6e6e6", "stroke": "#9e9e9e", "text": "#303030", "width": "1"},
    "running": {"fill": "#1e6fd9", "stroke": "#124f9e", "text": "#ffffff", "width": "1.5"},
    "cached": {"fill": "#eef7ee", "stroke": "#2e7d32", "text": "#1b5e20", "width": "2.5"},
    "done": {"fill": "#2e7d32", "stroke": "#1b5e20", "text": "#ffffff", "width": "1"},
    "failed": {"fill": "#c62828", "stroke": "#7f0000", "text": "#ffffff", "width": "1.5"},
}
FONT = "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:12px"
INK = "fill:var(--jp-ui-font-color1,#1f1f1f)"
EDGE = "stroke:var(--jp-border-color1,#8a8a8a)"
LEGEND_HEIGHT = 26
LIST_LABEL_CHARS = 64
PAUSED = "#1976d2"  # the outline of the vertex a stepper is paused at
BREAKPOINT = "#d32f2f"  # the dot on a breakpoint vertex


def state_of(value: Mapping[str, Any] | str | None) -> str:
    """The state of a vertex dict (``VertexState.to_dict()``) or a state string; unknown → pending."""
    state = value.get("state") if isinstance(value, Mapping) else value
    return state if state in STATE_STYLES else "pending"


def combined_state(states: Iterable[str]) -> str:
    """One state for a folded chain: any failure, else any running, else any pending, else done/cached."""
    seen = set(states)
    for state in ("failed", "running", "pending", "done"):
        if state in seen:
            return state
    return "cached" if seen else "pending"


def node_states(layout: Mapping[str, Any], vertices: Mapping[str, Mapping[str, Any] | str]) -> dict[str, str]:
    """Layout node id → state, folded chains combining their members'."""
    result = {}
    for node in layout["nodes"]:
        if node.get("members"):
            result[node["id"]] = combined_state(state_of(vertices.get(m["id"])) for m in node["members"])
        else:
            result[node["id"]] = state_of(vertices.get(node["id"]))
    return result


def node_marks(layout: Mapping[str, Any], marks: Mapping[str, Any] | None) -> dict[str, set[str]]:
    """Layout node id → {"paused", "breakpoint"} from ``marks`` ({"current": digest, "breakpoints": [digests]});
    a folded chain carries the marks of its members."""
    if not marks:
        return {}
    current, breakpoints = marks.get("current"), set(marks.get("breakpoints") or ())
    result = {}
    for node in layout["nodes"]:
        ids = {member["id"] for member in node.get("members") or [node]}
        found = {"paused"} if current in ids else set()
        found |= {"breakpoint"} if ids & breakpoints else set()
        if found:
            result[node["id"]] = found
    return result


def render_svg(layout: Mapping[str, Any], vertices: Mapping[str, Mapping[str, Any] | str] | None = None,
               marks: Mapping[str, Any] | None = None) -> str:
    """The SVG document (a string) for ``layout``, nodes coloured from ``vertices`` (digest → dict or state),
    the stepper's position and breakpoints drawn from ``marks`` (see ``node_marks``)."""
    vertices = vertices or {}
    states = node_states(layout, vertices)
    marked = node_marks(layout, marks)
    legend, legend_width = _legend(layout, bool(marks))
    width, height = max(layout["width"], legend_width), layout["height"] + LEGEND_HEIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="envd-dag" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" style="{FONT}">',
        legend,
        f'<g transform="translate(0,{LEGEND_HEIGHT})">',
    ]
    if layout["mode"] == "dag":
        parts += [_edge(edge) for edge in layout["edges"]]
        parts += [_node(node, states[node["id"]], vertices.get(node["id"]), marked.get(node["id"], ()))
                  for node in layout["nodes"]]
    else:
        parts += [_row(node, states[node["id"]], vertices.get(node["id"]), marked.get(node["id"], ()))
                  for node in layout["nodes"]]
    parts.append("</g></svg>")
    return "".join(parts)


def _legend(layout: Mapping[str, Any], stepping: bool = False) -> tuple[str, float]:
    """The colour key (the stepper's marks too while stepping; the layout's note, e.g. why it is a list)
    and its width."""
    items, x = [], 16
    for state in STATES:
        style = STATE_STYLES[state]
        items.append(f'<rect x="{x}" y="7" width="14" height="12" rx="3" fill="{style["fill"]}" '
                     f'stroke="{style["stroke"]}" stroke-width="{style["width"]}"/>'
                     f'<text x="{x + 19}" y="17" fill="#1f1f1f" style="{INK}">{state}</text>')
        x += 24 + 7 * len(state) + 14
    if stepping:
        items.append(f'<rect x="{x}" y="7" width="14" height="12" rx="3" fill="none" stroke="{PAUSED}" '
                     f'stroke-width="3"/><text x="{x + 19}" y="17" fill="#1f1f1f" style="{INK}">paused here</text>'
                     f'<circle cx="{x + 117}" cy="13" r="5" fill="{BREAKPOINT}"/>'
                     f'<text x="{x + 127}" y="17" fill="#1f1f1f" style="{INK}">breakpoint</text>')
        x += 214
    if layout.get("reason"):
        items.append(f'<text x="{x + 8}" y="17" fill="#1f1f1f" style="{INK};font-style:italic">'
                     f'{escape(layout["reason"])}</text>')
        x += 16 + 7 * len(layout["reason"])
    return "<g class=\"envd-legend\">" + "".join(items) + "</g>", x


def edge_path(points: list[list[float]]) -> str:
    """SVG path data through ``points``: vertical-tangent curves between consecutive points."""
    (x, y), *rest = points
    path = [f"M{x:.1f},{y:.1f}"]
    for x1, y1 in rest:
        middle = (y + y1) / 2
        path.append(f"C{x:.1f},{middle:.1f} {x1:.1f},{middle:.1f} {x1:.1f},{y1:.1f}")
        x, y = x1, y1
    return " ".join(path)


def _edge(edge: Mapping[str, Any]) -> str:
    points = edge["points"]
    if len(points) < 2:
        return ""
    x, y = points[-1]
    return (f'<path d="{edge_path(points)}" fill="none" stroke="#8a8a8a" style="{EDGE}" stroke-width="1.2"/>'
            f'<polygon points="{x:.1f},{y:.1f} {x - 3.5:.1f},{y - 7:.1f} {x + 3.5:.1f},{y - 7:.1f}" '
            f'fill="#8a8a8a" style="fill:var(--jp-border-color1,#8a8a8a)"/>')


def tooltip(node: Mapping[str, Any], state: str, vertex: Mapping[str, Any] | str | None) -> str:
    """The hover text: full name, kind, state (with duration), source line, members of a fold."""
    lines = [node["name"], f"{node['kind']} · {state}"]
    if isinstance(vertex, Mapping) and vertex.get("duration") is not None:
        lines[-1] += f" · {vertex['duration']:.2f} s"
    if node.get("location"):
        lines.append(str(node["location"]))
    if node.get("members"):
        lines += [m["name"] for m in node["members"][:20]]
        if len(node["members"]) > 20:
            lines.append(f"… and {len(node['members']) - 20} more")
    return escape("\n".join(lines))


def _mark_parts(marks: Iterable[str], x: float, y: float, w: float, h: float) -> tuple[str, str]:
    """(attributes, shapes) of the stepper's marks on a node whose box is x, y, w, h."""
    attrs = "".join(f' data-{mark}="true"' for mark in sorted(marks))
    shapes = ""
    if "paused" in marks:
        shapes += (f'<rect class="envd-paused" x="{x - 4:.1f}" y="{y - 4:.1f}" width="{w + 8:.1f}" '
                   f'height="{h + 8:.1f}" rx="9" fill="none" stroke="{PAUSED}" stroke-width="3"/>')
    if "breakpoint" in marks:
        shapes += (f'<circle class="envd-breakpoint" cx="{x + 1:.1f}" cy="{y + 1:.1f}" r="5" '
                   f'fill="{BREAKPOINT}" stroke="#ffffff" stroke-width="1"/>')
    return attrs, shapes


def _node(node: Mapping[str, Any], state: str, vertex: Any, marks: Iterable[str] = ()) -> str:
    style = STATE_STYLES[state]
    x, y, w, h = node["x"], node["y"], node["width"], node["height"]
    dash = ' stroke-dasharray="5 3"' if node["kind"] == "chain" else ""
    border = "2.5" if node.get("head") and state != "cached" else style["width"]
    attrs, shapes = _mark_parts(marks, x, y, w, h)
    return (f'<g class="envd-node" data-id="{escape(node["id"])}" data-state="{state}"{attrs}>'
            f'<title>{tooltip(node, state, vertex)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="6" fill="{style["fill"]}" '
            f'stroke="{style["stroke"]}" stroke-width="{border}"{dash}/>'
            f'<text x="{x + w / 2:.1f}" y="{y + h / 2 + 4:.1f}" text-anchor="middle" fill="{style["text"]}">'
            f'{escape(node["label"])}</text>{shapes}</g>')


def _row(node: Mapping[str, Any], state: str, vertex: Any, marks: Iterable[str] = ()) -> str:
    style = STATE_STYLES[state]
    x, y, h = node["x"], node["y"], node["height"]
    attrs, shapes = _mark_parts(marks, x, y, 12, h)
    return (f'<g class="envd-node" data-id="{escape(node["id"])}" data-state="{state}"{attrs}>'
            f'<title>{tooltip(node, state, vertex)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="12" height="{h:.1f}" rx="3" fill="{style["fill"]}" '
            f'stroke="{style["stroke"]}" stroke-width="{style["width"]}"/>'
            f'<text x="{x + 20:.1f}" y="{y + h / 2 + 4:.1f}" fill="#1f1f1f" style="{INK}">'
            f'{escape(truncate(node["name"], LIST_LABEL_CHARS))}</text>{shapes}</g>')


TEXT_ROWS = 40  # vertices listed in text/plain before the rest is counted


def dag_text(layout: Mapping[str, Any], vertices: Mapping[str, Mapping[str, Any] | str] | None = None,
             marks: Mapping[str, Any] | None = None) -> str:
    """``text/plain`` for a DAG: size, folds, counts by state, the failed vertices by name, and the
    stepper's position (``◀ paused here``) and breakpoints (``● breakpoint``) from ``marks``."""
    vertices = vertices or {}
    every = [member for node in layout["nodes"] for member in node.get("members") or [node]]
    folds = sum(1 for node in layout["nodes"] if node.get("members"))
    counts = Counter(state_of(vertices.get(v["id"])) for v in every)
    text = f"DAG: {len(every)} vertices"
    if folds:
        text += f" ({len(layout['nodes'])} shown, {folds} chain{'s' if folds > 1 else ''} folded)"
    text += " — " + ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
    return text + "".join(f"\n{line}" for line in _text_rows(every, layout, vertices, marks or {}))


def _text_rows(every: list[Mapping[str, Any]], layout: Mapping[str, Any], vertices,
               marks: Mapping[str, Any]) -> list[str]:
    """One line per vertex (number, kind, name, state, the numbers of its inputs), failed ones always kept."""
    number = {v["id"]: n for n, v in enumerate(every, 1)}
    inputs: dict[str, list[int]] = {}
    for edge in layout.get("edges", ()):
        source, target = edge.get("source"), edge.get("target")
        if source in number and target in number:
            inputs.setdefault(target, []).append(number[source])
    rows = []
    breakpoints = set(marks.get("breakpoints") or ())
    for v in every:
        state = state_of(vertices.get(v["id"]))
        paused = v["id"] == marks.get("current")
        if len(rows) < TEXT_ROWS or state == "failed" or paused:
            arrows = f"  ← {', '.join(map(str, sorted(set(inputs.get(v['id'], [])))))}" if inputs.get(v["id"]) else ""
            here = "  ◀ failed here" if state == "failed" else "  ◀ paused here"
            flags = ("  ● breakpoint" if v["id"] in breakpoints else "") + (here if paused else "")
            rows.append(f"  {number[v['id']]:>3} {state:<8} {v.get('kind', ''):<6} {truncate(v['name'], 60)}"
                        f"{arrows}{flags}")
    hidden = len(every) - len(rows)
    return rows + ([f"  … {hidden} more"] if hidden > 0 else [])


def dag_html(layout: Mapping[str, Any], vertices: Mapping[str, Mapping[str, Any] | str] | None = None,
             marks: Mapping[str, Any] | None = None, beside: str = "") -> str:
    """The SVG in a scrolling box (what a saved notebook shows); ``beside`` it, the given HTML (the
    rebuild reasons) when there is any."""
    picture = f"{render_svg(layout, vertices, marks)}</div>"
    if not beside:
        return f'<div class="envd-static" style="max-height:640px;overflow:auto">{picture}'
    return ('<div class="envd-static" style="display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start">'
            f'<div style="max-height:640px;overflow:auto;flex:1 1 420px;min-width:0">{picture}{beside}</div>')
