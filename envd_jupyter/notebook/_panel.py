"""The kernel side of the JupyterLab panel: comm target ``envd-jupyter-panel``.

The panel opens a comm to the active notebook's kernel; the kernel answers with the states the
notebook defined, and sends them again after every ``%%envd`` and whenever a build settles:
``{"type": "states", "states": [{"name", "cell_id", "builder", "status", "graph"}]}``, where status is
defined | running | ok | failed | cancelled. While a state is stepped through (``%envd_step``) each
pause sends ``{"type": "stepper", "state": name, "position": digest}``, and its end ``position: None``.
The panel may send ``{"type": "refresh"}`` for the states again. Messages go from whichever thread
settled a build (ipykernel's iopub is thread-safe); one lock keeps them in order.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

TARGET = "envd-jupyter-panel"


class PanelChannel:
    """Every open panel comm of this kernel, and what they were last told."""

    def __init__(self, magics: Any):
        self._magics = magics
        self._comms: list[Any] = []
        self._lock = threading.RLock()
        self._sent_states: list[tuple] | None = None
        self._positions: dict[str, str | None] = {}  # state name -> digest of the pause panels were told
        self._graphs: dict[str, tuple[Any, dict]] = {}  # state name -> (Definition, its graph), drawn once each
        self._shell: Any = None

    # -- registration --------------------------------------------------------------------------
    def register(self, shell: Any) -> bool:
        """Register the comm target with the kernel (False in a terminal IPython: nothing to talk to)."""
        manager = getattr(getattr(shell, "kernel", None), "comm_manager", None)
        if manager is None:
            return False
        manager.register_target(TARGET, self._opened)
        shell.events.register("post_run_cell", self._after_cell)
        self._shell = shell
        return True

    def unregister(self) -> None:
        if self._shell is None:
            return
        self._shell.events.unregister("post_run_cell", self._after_cell)
        self._shell.kernel.comm_manager.unregister_target(TARGET, self._opened)
        with self._lock:
            comms, self._comms = self._comms, []
        for comm in comms:
            comm.close()
        self._shell = None

    def _opened(self, comm: Any, open_message: dict) -> None:
        comm.on_msg(lambda message: self._received(comm, message))
        comm.on_close(lambda message: self._closed(comm))
        with self._lock:
            self._comms.append(comm)
            comm.send(self._states_message(self._states()))
            for name, position in self._stepping_positions().items():
                comm.send({"type": "stepper", "state": name, "position": position})

    def _received(self, comm: Any, message: dict) -> None:
        data = (message.get("content") or {}).get("data") or {}
        if data.get("type") == "refresh":
            with self._lock:
                comm.send(self._states_message(self._states()))

    def _closed(self, comm: Any) -> None:
        with self._lock:
            if comm in self._comms:
                self._comms.remove(comm)

    # -- what the magics tell ------------------------------------------------------------------
    def track(self, name: str, future: Future) -> None:
        """A build of ``name`` started (or a pause was reached): tell now, and again when it settles."""
        self.sync()
        future.add_done_callback(lambda _: self._sync_from_build_thread())

    def _sync_from_build_thread(self) -> None:
        try:
            self.sync()
        except RuntimeError:  # a cell changed the workspace's states as they were read: its own sync follows
            pass

    def _after_cell(self, result: Any) -> None:
        raw = getattr(getattr(result, "info", None), "raw_cell", "") or ""
        self.sync(force=raw.lstrip().startswith("%%envd"))

    def sync(self, *, force: bool = False) -> None:
        """Send the states if they changed (or ``force``), and each stepping position that moved."""
        with self._lock:
            if not self._comms:
                self._sent_states = None  # a panel that opens later asks for them anyway
                return
            states = self._states()
            key = [(s["name"], s["cell_id"], s["builder"], s["status"], id(s["graph"])) for s in states]
            if force or key != self._sent_states:
                self._sent_states = key
                self._send(self._states_message(states))
            positions = self._stepping_positions()
            for name in sorted(set(positions) | set(self._positions)):
                if positions.get(name) != self._positions.get(name):
                    self._send({"type": "stepper", "state": name, "position": positions.get(name)})
            self._positions = {name: position for name, position in positions.items() if position is not None}

    def _send(self, data: dict) -> None:
        for comm in list(self._comms):
            comm.send(data)

    # -- reading the magics --------------------------------------------------------------------
    @staticmethod
    def _states_message(states: list[dict]) -> dict:
        return {"type": "states", "states": states}

    def _states(self) -> list[dict[str, Any]]:
        workspace = self._magics.workspace
        states = []
        for name in workspace.states:
            cell = workspace.cell(name)
            status, builder = _build_status(self._magics.build_future(name))
            states.append({"name": name, "cell_id": cell.cell_id, "builder": builder, "status": status,
                           "graph": self._graph(name, cell.definition)})
        return states

    def _graph(self, name: str, definition: Any) -> dict:
        known = self._graphs.get(name)
        if known is None or known[0] is not definition:
            known = self._graphs[name] = (definition, definition.to_graph())
        return known[1]

    def _stepping_positions(self) -> dict[str, str | None]:
        """The paused vertex of each state being stepped through: the head of its pause's graph."""
        positions: dict[str, str | None] = {}
        for name in self._magics.stepping_names():
            future = self._magics.build_future(name)
            stage = future.result() if future is not None and future.done() and future.exception() is None else None
            head = getattr(getattr(stage, "definition", None), "head", None)
            positions[name] = head[0] if head else None
        return positions


def _build_status(future: Future | None) -> tuple[str, str]:
    """(status, builder) of a state's last build: defined when it was never built here."""
    if future is None:
        return "defined", ""
    if not future.done():
        return "running", ""
    error = future.exception()
    if error is not None:
        return ("cancelled" if type(error).__name__ == "SolveCancelled" else "failed"), ""
    stage = future.result()
    return ("failed" if getattr(stage, "failure", None) is not None else "ok"), stage.builder
