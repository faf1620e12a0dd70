"""Rebuild reasons beside the DAG: which steps ran, which came from cache, and why each one ran.

Pure presentation over what the library already computed: lang's ``RebuildReport`` (the first
changed ops against the previous solve of the same state name), the graph's edges and the solve's
``BuildModel``. No solve, no daemon call: a step that ran is traced back along its inputs to the
first change that made its digest new.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from html import escape
from typing import Any

from ._tables import BOX, CELL, TABLE, model_dict

NO_PREVIOUS = "first solve of this state in the kernel"
SAME_OP = "same op as the previous solve: not in this builder's cache"
REASON_CHARS = 160
_IMAGE_KINDS = ("image", "oci")


def step_reasons(report: Any, graph: Mapping[str, Any], model: Any) -> list[dict[str, str]]:
    """One row per finished vertex of ``graph`` in ``model``, in the graph's (dependency) order:
    ``{digest, name, status, reason}``.

    ``status`` is ran, cached or failed; ``reason`` says for a step that ran (or failed) the first
    changed input that made it run. ``report`` is ``lang.explain_rebuild(previous, current)``, or
    None when the state had no previous solve.
    """
    changes = {change.digest: change for change in report.changes} if report is not None else {}
    downstream = set(report.downstream) if report is not None else set()
    names = {node["id"]: node.get("name") or node["id"][:19] for node in graph.get("nodes", ())}
    images = {node["id"] for node in graph.get("nodes", ()) if node.get("kind") in _IMAGE_KINDS}
    order = {digest: position for position, digest in enumerate(names)}
    inputs: dict[str, list[str]] = {}
    for edge in graph.get("edges", ()):
        inputs.setdefault(edge["target"], []).append(edge["source"])
    rows = []
    for vertex in model_dict(model)["vertices"]:
        state = vertex.get("state")
        digest = vertex["digest"]
        if state not in ("done", "cached", "failed") or digest not in names:  # the daemon's own vertices: not steps
            continue
        status = "cached" if vertex.get("cached") or state == "cached" else ("failed" if state == "failed" else "ran")
        if status == "ran" and digest in images and digest not in changes:
            status = "cached"  # an unchanged image was only resolved again (BuildKit may say done, not cached)
        if status == "cached":
            reason = "served from cache"
        elif digest in changes:
            reason = _own_change(changes[digest])
        elif digest in downstream:
            cause = _first_change_upstream(digest, inputs, changes)
            reason = f"input changed: {_named(cause)} — {_own_change(cause)}" if cause else "an input changed"
        else:
            reason = NO_PREVIOUS if report is None else SAME_OP
        rows.append({"digest": digest, "name": names[digest], "status": status,
                     "reason": reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 1] + "…"})
    return sorted(rows, key=lambda row: order[row["digest"]])  # cached steps report in no useful order


def _own_change(change: Any) -> str:
    if change.previous is None:
        return "new step"
    what = f"{', '.join(change.fields)} changed"
    return f"{what} ({'; '.join(change.details)})" if change.details else what


def _named(change: Any) -> str:
    name = change.name or change.digest[:19]
    return f"{name} ({change.location})" if change.location else name


def _first_change_upstream(digest: str, inputs: Mapping[str, list[str]], changes: Mapping[str, Any]) -> Any:
    """The nearest first change reached along inputs (breadth first, inputs in op order)."""
    queue, seen = deque(inputs.get(digest, ())), {digest}
    while queue:
        current = queue.popleft()
        if current in seen:
            continue
        seen.add(current)
        if current in changes:
            return changes[current]
        queue.extend(inputs.get(current, ()))
    return None


def counts(rows: list[Mapping[str, str]]) -> str:
    """"3 ran · 2 cached" (and failed ones)."""
    tally = {status: sum(1 for row in rows if row["status"] == status) for status in ("ran", "cached", "failed")}
    return " · ".join(f"{n} {status}" for status, n in tally.items() if n or status != "failed")


def reasons_text(rows: list[Mapping[str, str]]) -> str:
    if not rows:
        return "rebuild reasons: no step has finished yet"
    lines = [f"rebuild reasons: {counts(rows)}"]
    lines += [f"  {row['status']:<6} {row['name']}" + ("" if row["status"] == "cached" else f" — {row['reason']}")
              for row in rows]
    return "\n".join(lines)


def reasons_html(rows: list[Mapping[str, str]]) -> str:
    """The static panel shown beside the DAG's SVG."""
    colour = {"ran": "#2e7d32", "cached": "#757575", "failed": "#c62828"}
    body = "".join(
        f'<tr class="envd-reason" data-status="{row["status"]}"><td style="{CELL};color:{colour[row["status"]]};'
        f'font-weight:600">{row["status"]}</td><td style="{CELL}">{escape(row["name"])}'
        + ("" if row["status"] == "cached" else
           f'<div style="color:var(--jp-ui-font-color2,#555)">{escape(row["reason"])}</div>')
        + "</td></tr>" for row in rows)
    head = f"Rebuild reasons · {counts(rows)}" if rows else "Rebuild reasons · no step has finished yet"
    return (f'<div class="envd-static envd-reasons" style="{BOX};flex:0 1 360px;min-width:240px">'
            f'<div style="font-weight:600;padding:2px 8px">{escape(head)}</div>'
            f'<table style="{TABLE}"><tbody>{body}</tbody></table></div>')
