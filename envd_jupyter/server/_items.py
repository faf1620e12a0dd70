"""The JSON shapes the panel reads: a daemon's ``HistoryRecord`` as a history item, one build's detail."""

from __future__ import annotations

from typing import Any

SUMMARY_KEYS = ("id", "builder", "address", "name", "status", "created", "completed", "total", "cached", "ran",
                "error", "pinned", "source", "notebook", "state", "cell_id")  # history.merged_history's items
MAX_LOG_LINES = 500  # per step in a detail reply; the daemon's replay is bounded by the client already


def record_summary(builder: str, address: str, record: Any) -> dict[str, Any]:
    """A daemon's record as a history item with no archive entry behind it."""
    return {"id": record.ref, "builder": builder, "address": address, "name": record.name, "status": record.status,
            "created": record.created, "completed": record.completed, "total": record.steps_total,
            "cached": record.steps_cached, "ran": max(0, record.steps_completed - record.steps_cached),
            "error": record.error, "pinned": record.pinned, "source": "daemon", "notebook": "", "state": "",
            "cell_id": ""}


def archive_summary(entry: dict[str, Any]) -> dict[str, Any]:
    return {**{key: entry.get(key) for key in SUMMARY_KEYS}, "source": "archive"}


def detail_item(builder: str, address: str, archived: dict | None, record: Any, model: Any, provenance: list,
                notes: list[str]) -> dict[str, Any]:
    """One build: its summary, steps with timings (cached or ran), graph, scheduling scores and logs.

    A kernel's archive entry says what the cell saw and wins over the daemon's summary (which reports a
    stage kept open for browsing as running), except for the daemon's live pin. Steps and logs come from
    the daemon's replay when it has one, else from the archive (each step's last log lines; always for a
    build the archive says was offered secrets: only its lines are masked); a build of
    another client (buildx) has no archive graph, only its provenance steps. ``notes`` say what could not
    be read.
    """
    item = archive_summary(archived) if archived is not None else {key: None for key in SUMMARY_KEYS}
    if record is not None:
        daemon = record_summary(builder, address, record)
        if archived is None or archived.get("origin") == "daemon":
            item.update(daemon)
        item.update(source="both" if archived is not None else "daemon", pinned=record.pinned,
                    frontend=record.frontend, exporter_response=dict(record.exporter_response))
    steps = model.to_dict()["vertices"] if model is not None else list((archived or {}).get("steps") or [])
    item.update(steps=steps, graph=(archived or {}).get("graph"), scheduling=(archived or {}).get("scheduling"),
                provenance=provenance, logs=_logs(model, steps), notes=notes)
    return item


def _logs(model: Any, steps: list[dict]) -> list[dict[str, Any]]:
    if model is None:  # the archive keeps each step's last lines only
        return [{"digest": step.get("digest"), "name": step.get("name", ""), "lines": list(step["log_tail"])}
                for step in steps if step.get("log_tail")]
    logs = []
    for vertex in tuple(model.vertices.values()):
        text = vertex.log_text()
        if text:
            logs.append({"digest": vertex.digest, "name": vertex.name, "lines": text.splitlines()[-MAX_LOG_LINES:]})
    return logs
