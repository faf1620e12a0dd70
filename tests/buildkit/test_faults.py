"""Cancellation and daemon faults: server-side cancel, KeyboardInterrupt, a daemon killed mid-solve.

The kill test runs its OWN short-lived dockerd (same binary as the old flavour) in a temp dir;
the shared daemons are never touched.
"""

import _thread
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from envd_jupyter.buildkit import DaemonError, SolveCancelled, connect

from llbdefs import chain

PRIVATE_DOCKERD = "/usr/sbin/dockerd"
WAIT = 30.0  # generous bound for conditions we poll for; speed is measured in bench/


def _procs_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _eventually(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT}s: {what}")
        time.sleep(0.1)


def _when_running(needle: str, action):
    """An on_event callback that runs ``action`` once the step whose name holds ``needle`` starts."""
    fired = threading.Event()

    def on_event(event):
        if event.kind == "started" and needle in event.vertex.name and not fired.is_set():
            fired.set()
            threading.Timer(0.3, action).start()

    return on_event


def _sleep_step(marker: str) -> str:
    return f"sleep 4242; echo {marker}"


def test_cancel_event_stops_the_step_on_the_daemon(any_client, busybox, network, unique):
    marker = f"cancel-{unique}"
    cancel = threading.Event()
    baseline = threading.active_count()
    with pytest.raises(SolveCancelled):
        any_client.solve(chain(busybox, [_sleep_step(marker)], network=network), cancel=cancel,
                         on_event=_when_running(marker, cancel.set))
    _eventually(lambda: not _procs_with(marker), "the cancelled step's process is gone")
    _eventually(lambda: threading.active_count() <= baseline, "no solve thread outlives the solve")


def test_cancel_event_stops_a_solve_routed_through_the_gateway(any_client, busybox, network, unique):
    """An image export with a config solves via a gateway Return; its cancel must work the same way."""
    from envd_jupyter.buildkit._exports import Image

    marker = f"cancel-gw-{unique}"
    cancel = threading.Event()
    baseline = threading.active_count()
    export = Image(f"envd-jupyter-test/cancelled:{unique}", attrs={"containerimage.config": "{}"})
    with pytest.raises(SolveCancelled):
        any_client.solve(chain(busybox, [_sleep_step(marker)], network=network), exports=[export], cancel=cancel,
                         on_event=_when_running(marker, cancel.set))
    _eventually(lambda: not _procs_with(marker), "the cancelled step's process is gone")
    _eventually(lambda: threading.active_count() <= baseline, "no solve thread outlives the solve")
    assert export.ok is False


def test_keyboard_interrupt_cancels_and_returns_control(docker_current, client_for, busybox, network, unique):
    marker = f"interrupt-{unique}"
    client = client_for(docker_current)
    with pytest.raises(KeyboardInterrupt):
        client.solve(chain(busybox, [_sleep_step(marker)], network=network),
                     on_event=_when_running(marker, _thread.interrupt_main))
    _eventually(lambda: not _procs_with(marker), "the interrupted step's process is gone")
    assert client.solve(chain(busybox, [f"echo after-{marker}"], network=network)).model.total >= 2


@pytest.fixture
def private_dockerd(tmp_path_factory, daemon_env, docker_old):
    """A throwaway dockerd on its own socket and data root, with the busybox image loaded."""
    root = Path(tmp_path_factory.mktemp("dockerd"))
    sock = root / "docker.sock"
    log = open(root / "dockerd.log", "wb")
    proc = subprocess.Popen(
        [PRIVATE_DOCKERD, "--host", f"unix://{sock}", "--data-root", str(root / "data"),
         "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"),
         "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false",
         "--containerd-namespace", f"envd-test-{os.getpid()}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _eventually(lambda: sock.exists() or proc.poll() is not None, "private dockerd socket appears")
        assert proc.poll() is None, (root / "dockerd.log").read_text()[-2000:]
        cli = daemon_env.get("ENVD_DOCKER_CLI", "docker")
        image = daemon_env["ENVD_IMAGE_BUSYBOX"]
        saved = subprocess.run([cli, "-H", f"unix://{docker_old}", "save", image], check=True,
                               capture_output=True, timeout=120).stdout
        subprocess.run([cli, "-H", f"unix://{sock}", "load"], input=saved, check=True, capture_output=True,
                       timeout=120)
        yield proc, sock
    finally:
        _kill_tree(proc)
        log.close()
        subprocess.run(["umount", "-R", str(root / "exec")], capture_output=True)
        subprocess.run(["umount", "-R", str(root / "data")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the dockerd we started and the processes it started (its containerd), by pid."""
    pending = [proc.pid]
    seen = []
    while pending:
        pid = pending.pop()
        seen.append(pid)
        pending.extend(_children(pid))
    for pid in reversed(seen):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)


def test_daemon_killed_mid_solve_raises_clear_error(private_dockerd, busybox, unique):
    proc, sock = private_dockerd
    marker = f"killed-{unique}"
    daemon_children = _children(proc.pid)
    client = connect(f"docker+unix://{sock}")
    baseline = threading.active_count()
    try:
        with pytest.raises(DaemonError) as info:
            client.solve(chain(busybox, [_sleep_step(marker)], network="none"),
                         on_event=_when_running(marker, lambda: os.kill(proc.pid, signal.SIGKILL)))
        assert "went away mid-solve" in str(info.value) and str(sock) in str(info.value)
        _eventually(lambda: threading.active_count() <= baseline, "no solve thread outlives the dead daemon")
    finally:
        client.close()
        for pid in daemon_children + _procs_with(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_frozen_daemon_mid_solve_raises_instead_of_hanging(private_dockerd, busybox, unique):
    """SIGSTOP keeps dockerd's sockets open but silent; keepalive pings must notice."""
    proc, sock = private_dockerd
    marker = f"frozen-{unique}"
    client = connect(f"docker+unix://{sock}")
    try:
        with pytest.raises(DaemonError, match="went away mid-solve"):
            client.solve(chain(busybox, [_sleep_step(marker)], network="none"),
                         on_event=_when_running(marker, lambda: os.kill(proc.pid, signal.SIGSTOP)))
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        client.close()
        for pid in _procs_with(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_asyncio_task_cancel_cancels_the_solve(docker_classic, client_for, busybox, network, unique):
    import asyncio

    marker = f"task-{unique}"
    client = client_for(docker_classic)
    baseline = threading.active_count()

    async def scenario():
        started = asyncio.Event()
        loop = asyncio.get_running_loop()
        on_event = _when_running(marker, lambda: loop.call_soon_threadsafe(started.set))
        task = asyncio.create_task(client.solve_async(chain(busybox, [_sleep_step(marker)], network=network),
                                                      on_event=on_event))
        await asyncio.wait_for(started.wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await client.solve_async(chain(busybox, [f"echo after-{marker}"], network=network))

    after = asyncio.run(scenario())
    assert any(f"after-{marker}" in v.log_text() for v in after.model.vertices.values())
    _eventually(lambda: not _procs_with(marker), "the cancelled task's step process is gone")
    _eventually(lambda: threading.active_count() <= baseline, "no solve thread outlives the task")
