"""Ctrl-C during solve_environment cancels the build on the daemon and returns control."""

import _thread
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from envd_jupyter.buildkit import connect
from envd_jupyter.lang import EnvdFunctions, Environment, solve_environment

WAIT = 60.0


def _procs_with(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(entry.name)
        except OSError:
            pass
    return found


@pytest.mark.parametrize("interrupt", ["sigint", "interrupt_main"])
def test_ctrl_c_cancels_the_environment_build(interrupt, docker_current, daemon_env):
    marker = f"env-interrupt-{uuid.uuid4().hex[:12]}"
    send = (lambda: os.kill(os.getpid(), signal.SIGINT)) if interrupt == "sigint" else _thread.interrupt_main
    cancelled = threading.Event()

    def on_event(event):
        if marker not in event.vertex.name:
            return
        if event.kind == "log" and f"started-{marker}".encode() in event.log.data:
            send()
        elif event.kind == "error" and "cancel" in event.vertex.error:
            cancelled.set()

    fns = EnvdFunctions(Environment(name="interrupted"))
    fns.base(image=daemon_env["ENVD_IMAGE_PYTHON"])
    fns.run([f"echo started-{marker}; sleep 4242; echo {marker}"])
    with connect(f"docker+unix://{docker_current}") as client:
        with pytest.raises(KeyboardInterrupt):
            solve_environment(client, fns.env, network="host", timeout=WAIT, on_event=on_event)
    assert cancelled.wait(WAIT), "the daemon reported the step cancelled"
    deadline = time.monotonic() + WAIT
    while _procs_with(marker):
        assert time.monotonic() < deadline, "the cancelled step's process is gone"
        time.sleep(0.1)
