"""The JSON shapes the panel reads: a daemon's ``HistoryRecord`` as a history item, one build's detail."""

from __future__ import annotations

from typing import Any, Iterable

SUMMARY_KEYS = ("id", "builder", "name", "status", "created", "completed", "total", "cached", "ran", "error",
                "pinned", "source", "notebook", "state", "cell_id")
MAX_LOG_LINES = 500  # per step in a detail reply; the daemon's replay is bounded by the client already


class AnsweredHistory:
    """A daemon's records fetched beforehand (in parallel, with a timeout), answering ``Client.history``'s
    filters as the daemon would, so ``history.merged_history`` waits on no daemon."""

    def __init__(self, records: Iterable[Any]):
        self.records = list(records)

    def history(self, *, ref: str | None = None, active_only: bool = False, limit: int | None = None) -> list[Any]:
        found = [r for r in self.records if (ref is None or r.ref == ref) and (not active_only or r.status == "running")]
        return found if limit is None else found[:limit]


def record_summary(builder: str, record: Any) -> dict[str, Any]:
    """A daemon's record as a history item with no archive entry behind it."""
    return {"id": record.ref, "builder": builder, "name": record.name, "status": record.status,
            "created": record.created, "completed": record.completed, "total": record.steps_total,
            "cached": record.steps_cached, "ran": max(0, record.steps_completed - record.steps_cached),
            "error": record.error, "pinned": record.pinned, "source": "daemon",
            "notebook": None, "state": None, "cell_id": None}


def detail_item(builder: str, archived: dict | None, record: Any, model: Any, notes: list[str]) -> dict[str, Any]:
    """One build: the summary (daemon's fields over the archive's), steps with timings, graph, scores, logs.

    Steps and logs come from the daemon's replay when it still has the build, else from the archive
    (whose steps keep the last lines of each step's log). ``notes`` say which source could not be read.
    """
    item: dict[str, Any] = {key: None for key in SUMMARY_KEYS}
    if archived is not None:
        item.update({key: archived.get(key) for key in SUMMARY_KEYS if key in archived})
        item.update(pinned=False, source="archive")
    if record is not None:
        daemon = record_summary(builder, record)
        for key in ("notebook", "state", "cell_id"):
            daemon.pop(key)
        item.update(daemon, source="both" if archived is not None else "daemon")
        item.update(frontend=record.frontend, exporter_response=dict(record.exporter_response))
    steps = model.to_dict()["vertices"] if model is not None else list((archived or {}).get("steps") or [])
    item.update(steps=steps, graph=(archived or {}).get("graph"), scheduling=(archived or {}).get("scheduling"),
                logs=_logs(model, steps), notes=notes)
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
