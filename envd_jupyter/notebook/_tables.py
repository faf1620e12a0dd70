"""Static HTML and plain-text tables: a build's progress summary and a scheduling decision's scores.

What a saved notebook keeps of the Progress and Scores widgets, and their ``text/plain`` for
terminals. Inputs are the library's data shapes: ``BuildModel.to_dict()`` (or its vertex list)
and ``SchedulingResult`` (the object, its ``to_dict()``, one cycle record's ``to_dict()`` or a
list of them). Every piece of text from a build or a config is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from ._layout import truncate
from ._svg import STATE_STYLES, state_of

MAX_ROWS = 400
NAME_CHARS = 80
BOX = ("font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:12px;"
       "color:var(--jp-ui-font-color1,#1f1f1f)")
CELL = "padding:2px 8px;border-bottom:1px solid var(--jp-border-color2,#e0e0e0);text-align:left;vertical-align:top"
TABLE = "border-collapse:collapse;font-size:inherit;font-family:inherit;color:inherit;margin:2px 0 6px"
LOG = ("margin:0;max-height:9em;overflow:auto;white-space:pre-wrap;word-break:break-all;"
       "font-family:var(--jp-code-font-family,monospace);font-size:11px;color:var(--jp-ui-font-color2,#555)")


def build_order(vertices: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Vertices as a build log lists them: by start time, then the daemon's index; not started yet last.

    The daemon's ``index`` (first appearance in its Status stream) often runs head first, which
    would list a two-branch build upside down.
    """
    def key(vertex: Mapping[str, Any]) -> tuple[bool, float, int]:
        began = vertex.get("started")
        began = vertex.get("completed") if began is None else began
        return began is None, began or 0.0, vertex.get("index") or 0

    return sorted(vertices, key=key)


def model_dict(model: Any) -> dict[str, Any]:
    """A ``BuildModel.to_dict()``-shaped dict from a BuildModel, that dict, or a list of vertex dicts,
    its vertices in ``build_order``."""
    if hasattr(model, "to_dict"):
        model = model.to_dict()
    if isinstance(model, Mapping):
        return dict(model, vertices=build_order(model["vertices"]))
    vertices = build_order(model)
    states = [state_of(v) for v in vertices]
    return {"version": 1, "vertices": vertices, "total": len(vertices), "cached": states.count("cached"),
            "ran": sum(1 for v in vertices if state_of(v) in ("done", "failed") and not v.get("cached")),
            "failed": states.count("failed"),
            "done": bool(vertices) and all(s in ("done", "cached", "failed") for s in states)}


def summary_line(model: Mapping[str, Any]) -> str:
    """"12 vertices · 5 ran · 6 cached · 0 failed · done" (or "running"); after a failure "… 1 failed ·
    stopped at STEP": the build is kept open for the failure's filesystem, but nothing more will run.

    The one rule for the words: the progress widget shows this line as its ``summary["line"]``.
    """
    failed = build_order(v for v in model["vertices"] if state_of(v) == "failed")
    status = (f"stopped at {truncate(failed[0].get('name') or failed[0].get('digest', ''), NAME_CHARS)}"
              if failed else "done" if model.get("done") else "running")
    return (f"{model.get('total', len(model['vertices']))} vertices · {model.get('ran', 0)} ran · "
            f"{model.get('cached', 0)} cached · {model.get('failed', len(failed))} failed · {status}")


def chip(state: str) -> str:
    style = STATE_STYLES[state]
    return (f'<span style="display:inline-block;padding:0 6px;border-radius:8px;background:{style["fill"]};'
            f'color:{style["text"]};border:1px solid {style["stroke"]}">{state}</span>')


def duration_text(vertex: Mapping[str, Any]) -> str:
    duration = vertex.get("duration")
    return "" if duration is None else f"{duration:.2f} s"


def shown_rows(vertices: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """At most MAX_ROWS vertices, failed and running ones always kept; and how many were left out."""
    if len(vertices) <= MAX_ROWS:
        return list(vertices), 0
    room = MAX_ROWS - sum(1 for v in vertices if state_of(v) in ("failed", "running"))
    kept = []
    for vertex in vertices:
        if state_of(vertex) in ("failed", "running"):
            kept.append(vertex)
        elif room > 0:
            kept.append(vertex)
            room -= 1
    return kept, len(vertices) - len(kept)


def progress_html(model: Any) -> str:
    """The progress summary table: vertex, state, duration, cached, last log lines (and the error)."""
    model = model_dict(model)
    rows, hidden = shown_rows(model["vertices"])
    head = "".join(f'<th style="{CELL}">{h}</th>' for h in ("#", "vertex", "state", "duration", "cached",
                                                             "last log lines"))
    body = []
    for position, vertex in enumerate(rows, 1):
        name = vertex.get("name") or vertex.get("digest", "")
        lines = list(vertex.get("log_tail") or ())
        if vertex.get("error"):
            lines.append(f"error: {vertex['error']}")
        log = f'<pre style="{LOG}">{escape(chr(10).join(lines))}</pre>' if lines else ""
        body.append(
            f'<tr><td style="{CELL}">{position}</td>'
            f'<td style="{CELL}" title="{escape(name)}">{escape(truncate(name, NAME_CHARS))}</td>'
            f'<td style="{CELL}">{chip(state_of(vertex))}</td><td style="{CELL}">{duration_text(vertex)}</td>'
            f'<td style="{CELL}">{"✓" if vertex.get("cached") else ""}</td><td style="{CELL}">{log}</td></tr>')
    more = f'<div style="padding:4px 8px">… {hidden} more vertices not shown</div>' if hidden else ""
    return (f'<div class="envd-static envd-progress" style="{BOX}"><div style="padding:4px 8px;font-weight:600">'
            f'{escape(summary_line(model))}</div><table style="{TABLE}">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}</div>')


def progress_text(model: Any) -> str:
    """buildctl ``--progress=plain``-like summary: one line a vertex, log tails of failures."""
    model = model_dict(model)
    rows, hidden = shown_rows(model["vertices"])
    lines = [f"Build: {summary_line(model)}"]
    for position, vertex in enumerate(rows, 1):
        state = state_of(vertex)
        lines.append(f"  #{position} {state:<7} {duration_text(vertex):>9}  "
                     f"{truncate(vertex.get('name') or vertex.get('digest', ''), NAME_CHARS)}")
        if state == "failed":
            lines += [f"      | {line}" for line in vertex.get("log_tail") or ()]
            if vertex.get("error"):
                lines.append(f"      error: {vertex['error']}")
    if hidden:
        lines.append(f"  … {hidden} more vertices")
    return "\n".join(lines)


def scores_dict(result: Any) -> dict[str, Any]:
    """``{"primary", "endpoint", "shadows", "cycles"}`` from a SchedulingResult, its dict, or cycle records."""
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    if isinstance(result, Mapping) and "cycles" in result:
        return {"primary": result.get("primary"), "endpoint": result.get("endpoint"),
                "shadows": dict(result.get("shadows") or {}), "cycles": list(result["cycles"])}
    cycles = [result] if isinstance(result, Mapping) else [r.to_dict() if hasattr(r, "to_dict") else r
                                                           for r in result]
    return {"primary": None, "endpoint": None, "shadows": {}, "cycles": cycles}


def number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else escape(str(value))


def _cycle_html(cycle: Mapping[str, Any], shadow: bool) -> str:
    scorers = cycle.get("scorers", [])
    picked = set(cycle.get("picked", []))
    title = (f"profile <b>{escape(cycle.get('profile', ''))}</b>{' (shadow)' if shadow else ''}: "
             f"{len(cycle.get('candidates', []))} candidates")
    if picked:
        title += (f" → picked <b>{escape(', '.join(cycle['picked']))}</b>"
                  f" by {escape(cycle.get('picker') or 'the picker')}")
    head1 = "".join(f'<th colspan="2" style="{CELL}">{escape(s["name"])} ×{number(s["weight"])}</th>'
                    for s in scorers)
    head2 = "".join(f'<th style="{CELL}">raw</th><th style="{CELL}">weighted</th>' for _ in scorers)
    rows = []
    for endpoint, score in cycle.get("scores", {}).items():
        cells = "".join(
            f'<td style="{CELL}">{number(score["scorers"][s["name"]]["raw"])}</td>'
            f'<td style="{CELL}">{number(score["scorers"][s["name"]]["weighted"])}</td>' for s in scorers)
        mark = ' style="font-weight:700;background:var(--jp-layout-color2,#eef5ee)"' if endpoint in picked else ""
        rows.append(f'<tr{mark}><td style="{CELL}">{"★ " if endpoint in picked else ""}{escape(endpoint)}</td>'
                    f'{cells}<td style="{CELL}">{number(score["total"])}</td></tr>')
    notes = [f"removed by {escape(f['filter'])}: {escape(', '.join(f['removed']))}"
             for f in cycle.get("filters", []) if f.get("removed")]
    if cycle.get("emptied_by"):
        notes.append(f"no endpoint left after {escape(cycle['emptied_by'])}")
    if cycle.get("error"):
        notes.append(f"error: {escape(cycle['error'])}")
    return (f'<div style="padding:4px 8px">{title}</div><table style="{TABLE}">'
            f'<thead><tr><th rowspan="2" style="{CELL}">endpoint</th>{head1}'
            f'<th rowspan="2" style="{CELL}">total</th></tr><tr>{head2}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>'
            + "".join(f'<div style="padding:2px 8px">{note}</div>' for note in notes))


def scores_html(result: Any) -> str:
    """Every cycle's endpoint × scorer table (raw, weighted, total), the filtered endpoints, the pick."""
    scores = scores_dict(result)
    parts = [f'<div class="envd-static envd-scores" style="{BOX}">']
    if scores["endpoint"]:
        parts.append(f'<div style="padding:4px 8px;font-weight:600">scheduled on {escape(scores["endpoint"])}'
                     f' (profile {escape(scores["primary"] or "")})</div>')
    parts += [_cycle_html(cycle, cycle.get("profile") in scores["shadows"]) for cycle in scores["cycles"]]
    for name, shadow in scores["shadows"].items():
        verdict = "failed: " + shadow["error"] if shadow.get("error") else (
            "agrees" if shadow.get("agrees") else "disagrees")
        parts.append(f'<div style="padding:2px 8px">shadow profile {escape(name)} picked '
                     f'{escape(shadow.get("picked") or "nothing")}: {escape(verdict)}</div>')
    parts.append("</div>")
    return "".join(parts)


def scores_text(result: Any) -> str:
    """One line a cycle (profile, pick, totals by endpoint) plus removals and shadow verdicts."""
    scores = scores_dict(result)
    lines = [f"Scheduled on {scores['endpoint']} (profile {scores['primary']})"] if scores["endpoint"] else []
    for cycle in scores["cycles"]:
        totals = ", ".join(f"{name} {number(score['total'])}" for name, score in cycle.get("scores", {}).items())
        lines.append(f"  {cycle.get('profile')}: picked {', '.join(cycle.get('picked', [])) or 'nothing'}"
                     f" — totals {totals or 'none'}")
        lines += [f"    removed by {f['filter']}: {', '.join(f['removed'])}"
                  for f in cycle.get("filters", []) if f.get("removed")]
        if cycle.get("error"):
            lines.append(f"    error: {cycle['error']}")
    for name, shadow in scores["shadows"].items():
        lines.append(f"  shadow {name}: picked {shadow.get('picked') or 'nothing'}"
                     f" ({'agrees' if shadow.get('agrees') else 'disagrees'})")
    return "\n".join(lines) or "No scheduling decision"
