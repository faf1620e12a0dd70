"""One archive entry per ``%%envd`` build, written behind the cell.

The entry is made and written in one background thread, so a big graph or a locked archive never
delays a cell; any failure to record becomes one ``envd: build history not recorded: …`` line on
stderr, never an exception in the cell. Entries hold only what ``Definition.to_graph``,
``BuildModel.to_dict`` and the scheduler's records give (no secret values: those never enter a
Definition, and the model masks any a step prints).
"""

from __future__ import annotations

import contextvars
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable


def notebook_path(shell) -> str:
    """The notebook this kernel serves: Jupyter's JPY_SESSION_NAME, else what the shell was told."""
    return os.environ.get("JPY_SESSION_NAME") or str((getattr(shell, "user_ns", None) or {}).get("__session__", ""))


class FleetFacts:
    """What the entry needs from the fleet, asked in the writer's thread; "" whatever fails (never raised)."""

    def __init__(self, fleet):
        self._fleet = fleet

    def address(self, builder: str) -> str:
        try:
            return str(self._fleet.client(builder).address)
        except Exception:  # noqa: BLE001 - recording never fails on a fact it cannot have
            return ""

    def daemon_ref(self, builder: str, name: str, since: float) -> str:
        """The ref of the daemon's newest record of build ``name`` started after ``since`` (a build that
        failed or was cancelled before a stage was kept leaves no other trace of it)."""
        try:
            records = self._fleet.client(builder).history(name=name)
        except Exception:  # noqa: BLE001 - a daemon without history (BuildKit 0.8), or gone
            return ""
        return next((r.ref for r in records if r.name == name and (r.created or 0.0) >= since), "")


def _status(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    from envd_jupyter.buildkit import SolveCancelled

    return "cancelled" if isinstance(error, (SolveCancelled, KeyboardInterrupt)) else "failed"


def _one_line(error: BaseException | None) -> str:
    if error is None:
        return ""
    text = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return text[:300]


class BuildRecording:
    """What one ``%%envd`` build learns as it goes (scheduling, lowered graph), turned into an entry at the end."""

    def __init__(self, *, state: str, name: str, cell_id: str, notebook: str, definition: Any,
                 secrets: tuple[str, ...] = ()):
        self.state, self.name, self.cell_id, self.notebook = state, name, cell_id, notebook
        self.secrets = tuple(sorted(secrets))  # the ids offered: the daemon's own logs of this build may show them
        self.definition = definition
        self.scheduling: Any = None
        self.created = time.time()
        self.completed: float | None = None

    def scheduled(self, scheduling: Any, definition: Any) -> None:
        self.scheduling, self.definition = scheduling, definition

    def finished(self) -> None:
        """Mark the end of the solve now (the entry is made later, in the writer's thread)."""
        self.completed = time.time()

    def entry(self, facts: FleetFacts, *, stage: Any = None, error: BaseException | None = None) -> dict:
        """The archive entry; ``stage`` is the solved one, or the one a failure kept open (if any)."""
        stage = stage if stage is not None else getattr(error, "stage", None)
        build = getattr(stage, "build", None)
        model = getattr(stage, "model", None) or getattr(error, "model", None)
        summary = model.to_dict() if model is not None else {}
        builder = getattr(stage, "builder", "") or getattr(getattr(self.scheduling, "endpoint", None), "name", "")
        records = getattr(self.scheduling, "records", None) or []
        ref = getattr(build, "ref", "") or (builder and facts.daemon_ref(builder, self.name, self.created))
        return {
            # Never scheduled, or unknown to the daemon: a local id, never joined with a daemon record.
            "id": ref or f"local-{uuid.uuid4().hex}",
            "builder": builder, "address": facts.address(builder) if builder else "",
            "notebook": self.notebook, "cell_id": self.cell_id,
            "state": self.state, "name": self.name, "created": self.created,
            "completed": self.completed or time.time(),
            "status": _status(error), "error": _one_line(error),
            "total": summary.get("total", 0), "cached": summary.get("cached", 0), "ran": summary.get("ran", 0),
            "steps": summary.get("vertices", []),
            "graph": self.definition.to_graph() if self.definition is not None else None,
            "scheduling": [record.to_dict() for record in records],
            "secrets": list(self.secrets),
        }


class ArchiveWriter:
    """Writes entries to an archive (opened on first use) in one thread of its own."""

    def __init__(self, path: str):
        self.path = path
        self._archive = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="envd-history-write")

    def submit(self, make_entry: Callable[[], dict]) -> None:
        """Make the entry and store it behind the cell (it reads only what the finished solve left in memory)."""
        context = contextvars.copy_context()  # a warning lands in the cell that built
        self._pool.submit(context.run, self._write, make_entry)

    def _write(self, make_entry: Callable[[], dict]) -> None:
        try:
            entry = make_entry()
            if self._archive is None:
                from envd_jupyter.history import Archive

                self._archive = Archive(self.path)
            self._archive.add(entry)
        except Exception as exc:  # noqa: BLE001 - recording must never break a cell
            _warn(exc)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait (bounded) until every entry submitted so far is written."""
        self._pool.submit(lambda: None).result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._archive is not None:
            self._archive.close()


def _warn(error: BaseException) -> None:
    print(f"envd: build history not recorded: {_one_line(error)}", file=sys.stderr)
