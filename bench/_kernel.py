"""A real Jupyter kernel driven over ZeroMQ, timing what a front end sees on iopub.

The benches talk to the kernel the way JupyterLab does: an ``execute_request`` on the shell
channel (with the cell id in its metadata, as Lab sends it), then every message on iopub until the
kernel goes idle. Times are taken when a message is read here, so they include the kernel's
serialisation and the ZeroMQ hop, as a front end's would.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client import KernelManager

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Reply:
    """What one cell sent back: when each thing arrived (seconds after the request was sent)."""

    idle: float = 0.0
    first_mime: dict[str, float] = field(default_factory=dict)  # MIME type → first display carrying it
    outputs: list[dict[str, Any]] = field(default_factory=list)  # display/execute_result data, stream text
    displayed: list[float] = field(default_factory=list)  # when each new display_data arrived
    result: dict[str, Any] = field(default_factory=dict)  # the execute_result's data
    result_at: float = 0.0
    comm_messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (time, content)
    foreign: list[dict[str, Any]] = field(default_factory=list)  # displays of other cells (background threads)
    error: str = ""

    def data_with(self, mime: str, *, foreign: bool = False) -> list[Any]:
        """The ``mime`` data of this cell's outputs (``foreign``: of other cells' too)."""
        outputs = self.outputs + self.foreign if foreign else self.outputs
        return [output[mime] for output in outputs if mime in output]


class Kernel:
    """A python3 kernel importing this checkout's ``envd_jupyter`` (PYTHONPATH), started in ``cwd``.

    ``session_name`` sets ``JPY_SESSION_NAME`` as a Jupyter server does for a notebook's kernel, so
    the magics keep their live widgets (a person is looking) instead of swapping in static pictures.
    """

    def __init__(self, cwd: Path, *, session_name: str = "bench.ipynb", timeout: float = 60):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        if session_name:
            env["JPY_SESSION_NAME"] = session_name
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(cwd=str(cwd), env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=timeout)

    def send(self, code: str, *, cell_id: str = "") -> str:
        """Send ``code`` as an execute_request; returns its message id."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        message = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
        self.client.shell_channel.send(message)
        return message["header"]["msg_id"]

    def execute(self, code: str, *, cell_id: str = "", timeout: float = 300) -> Reply:
        """Run one cell; returns when the kernel is idle again. Raises if the cell failed."""
        started = time.perf_counter()
        reply = self.collect(self.send(code, cell_id=cell_id), started, timeout=timeout)
        if reply.error:
            raise RuntimeError(f"cell failed in the kernel: {reply.error}")
        return reply

    def collect(self, msg_id: str, started: float, *, timeout: float = 300) -> Reply:
        """Read iopub until the kernel is idle after ``msg_id``; comm traffic of any parent is kept."""
        reply = Reply()
        deadline = started + timeout
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"no idle status within {timeout:.0f} s")
            message = self.client.get_iopub_msg(timeout=remaining)
            now = time.perf_counter() - started
            kind, content = message["msg_type"], message["content"]
            if kind in ("comm_open", "comm_msg", "comm_close"):
                reply.comm_messages.append((now, {"msg_type": kind, **content}))
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                if kind in ("display_data", "update_display_data"):
                    reply.foreign.append(content["data"])
                continue
            if kind == "execute_result":
                reply.result, reply.result_at = content["data"], now
            elif kind == "display_data":
                reply.displayed.append(now)
            if kind in ("display_data", "update_display_data", "execute_result"):
                reply.outputs.append(content["data"])
                for mime in content["data"]:
                    reply.first_mime.setdefault(mime, now)
            elif kind == "stream":
                reply.outputs.append({"stream": content["text"]})
            elif kind == "error":
                reply.error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                reply.idle = now
                self._drain_shell(msg_id)
                return reply

    def _drain_shell(self, msg_id: str) -> None:
        """Take the execute_reply off the shell channel (so replies never pile up)."""
        while True:
            message = self.client.get_shell_msg(timeout=30)
            if message["parent_header"].get("msg_id") == msg_id:
                return

    def cpu_seconds(self) -> float:
        """CPU time the kernel process has used (user + system, all its threads)."""
        fields = Path(f"/proc/{self.manager.provisioner.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def __enter__(self) -> "Kernel":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
