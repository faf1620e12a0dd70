"""Cancellation and daemon faults: cancel, Ctrl-C on every waiting path, a daemon killed mid-solve.

The kill test runs its OWN short-lived dockerd (same binary as the old flavour) in a temp dir;
the shared daemons are never touched.
"""

import _thread
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from envd_jupyter.buildkit import BuildModel, DaemonError, Image, LocalDir, SolveCancelled, connect
from envd_jupyter.buildkit._lifecycle import SolveLifecycle, StatusFollower
from envd_jupyter.llb import image

from llbdefs import chain

PRIVATE_DOCKERD = "/usr/sbin/dockerd"
WAIT = 30.0  # generous bound for conditions we poll for; speed is measured in bench/
INTERRUPTS_UNDER_LOAD = 20


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


class _Step:
    """A step that logs, then sleeps until cancelled; its events say when it runs and when the daemon cancelled it.

    Acting on the log line, not on "started", means the process surely runs (cancelling a container
    that is still starting can leave its process behind on dockerd 26, a daemon race).
    """

    def __init__(self, busybox, network, marker, action=lambda: None):
        self.marker, self.action = marker, action
        self.state = image(busybox).run(f"echo started-{marker}; sleep 4242; echo {marker}", network=network)
        self.cancelled = threading.Event()  # the daemon reported the step ended by the cancel

    def on_event(self, event) -> None:
        if self.marker not in event.vertex.name:
            return
        if event.kind == "log" and f"started-{self.marker}".encode() in event.log.data:
            self.action()
        elif event.kind == "error" and "cancel" in event.vertex.error:
            self.cancelled.set()

    def assert_cancelled_on_the_daemon(self) -> None:
        assert self.cancelled.wait(WAIT), "the daemon reported the step cancelled"
        _eventually(lambda: not _procs_with(self.marker), "the cancelled step's process is gone")


def test_cancel_stops_the_step_on_the_daemon(any_client, busybox, network, unique):
    baseline = threading.active_count()
    handles = []
    step = _Step(busybox, network, f"cancel-{unique}", lambda: handles[0].cancel())
    handles.append(any_client.start_solve(step.state, on_event=step.on_event, timeout=WAIT))
    with pytest.raises(SolveCancelled):
        handles[0].result(WAIT)
    step.assert_cancelled_on_the_daemon()
    _eventually(lambda: threading.active_count() <= baseline, "no solve thread outlives the solve")


def test_cancel_stops_a_solve_routed_through_the_gateway(any_client, busybox, network, unique):
    """An image export with a config solves via a gateway Return; its cancel must work the same way."""
    baseline = threading.active_count()
    export = Image(f"envd-jupyter-test/cancelled:{unique}", attrs={"containerimage.config": "{}"})
    handles = []
    step = _Step(busybox, network, f"cancel-gw-{unique}", lambda: handles[0].cancel())
    handles.append(any_client.start_solve(step.state, exports=[export], on_event=step.on_event, timeout=WAIT))
    with pytest.raises(SolveCancelled):
        handles[0].result(WAIT)
    step.assert_cancelled_on_the_daemon()
    _eventually(lambda: threading.active_count() <= baseline, "no solve thread outlives the solve")
    assert export.ok is False


@pytest.fixture
def cpu_hog():
    """Two busy processes, so the interrupt tests run on a loaded machine (where one of them once hung)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(2)]
    yield
    for hog in hogs:
        hog.kill()
        hog.wait()


def _interrupt(attempt: int):
    """Ctrl-C as a terminal or a Jupyter kernel sends it (SIGINT), or as ``_thread.interrupt_main`` simulates it."""
    return (lambda: os.kill(os.getpid(), signal.SIGINT)) if attempt % 2 else _thread.interrupt_main


def _interrupted(client, step, path: str, tmp_path) -> None:
    """Wait on ``path`` for ``step`` (whose action sends Ctrl-C); the wait must end in KeyboardInterrupt."""
    with pytest.raises(KeyboardInterrupt):
        if path == "solve":
            client.solve(step.state, on_event=step.on_event, timeout=WAIT)
        elif path == "handle":
            client.start_solve(step.state, on_event=step.on_event, timeout=WAIT).result(WAIT)
        elif path == "build-solve":
            with client.interactive(on_event=step.on_event, timeout=WAIT) as build:
                build.solve(step.state)
        else:  # the step runs while finish() exports it
            with client.interactive(exports=[LocalDir(tmp_path / step.marker)], on_event=step.on_event,
                                    timeout=WAIT) as build:
                build.finish(build.solve(step.state, evaluate=False))


def test_keyboard_interrupt_cancels_and_returns_control(docker_current, client_for, busybox, network, unique,
                                                        cpu_hog, tmp_path):
    """Ctrl-C while Client.solve waits, 20 times under CPU load: each one cancels the step on the daemon.

    Every wait is bounded (``timeout=``): an interrupt that got lost fails the test instead of hanging it.
    """
    client = client_for(docker_current)
    for attempt in range(INTERRUPTS_UNDER_LOAD):
        step = _Step(busybox, network, f"interrupt-{unique}-{attempt}", _interrupt(attempt))
        _interrupted(client, step, "solve", tmp_path)
        step.assert_cancelled_on_the_daemon()
    assert client.solve(chain(busybox, [f"echo after-{unique}"], network=network), timeout=WAIT).model.ran()


@pytest.mark.parametrize("path", ["handle", "build-solve", "build-finish"])
def test_keyboard_interrupt_on_every_waiting_path(path, docker_current, client_for, busybox, network, unique,
                                                  cpu_hog, tmp_path):
    client = client_for(docker_current)
    for attempt in range(2):
        step = _Step(busybox, network, f"interrupt-{path}-{unique}-{attempt}", _interrupt(attempt))
        _interrupted(client, step, path, tmp_path)
        step.assert_cancelled_on_the_daemon()
    assert client.solve(chain(busybox, [f"echo after-{unique}"], network=network), timeout=WAIT).model.ran()


def test_progress_is_followed_when_the_job_starts_after_the_daemon_stopped_waiting(docker_old, client_for, busybox,
                                                                                    network, unique):
    """BuildKit ends a Status stream with "no such job" when the job has not appeared in time (3 s on 0.8,
    6 s later); a slow daemon must not leave the model and the callbacks silent (the interrupt test waits on them)."""
    client = client_for(docker_old)
    lifecycle = SolveLifecycle(client)
    events = []
    early = StatusFollower(client.control, lifecycle.ref, BuildModel(), [events.append], lambda: None,
                           lifecycle.answered)
    _eventually(lambda: early.attempts >= 2, "the daemon said no such job and the follower asked again")
    lifecycle.start(chain(busybox, [f"echo late-{unique}"], network=network))
    assert lifecycle.answered.wait(WAIT)
    lifecycle.conclude()
    assert early.ended.wait(WAIT)
    assert any(event.kind == "log" and f"late-{unique}".encode() in event.log.data for event in events)


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
        subprocess.run(["umount", "-R", "-l", str(root / "exec")], capture_output=True)
        subprocess.run(["umount", "-R", "-l", str(root / "data")], capture_output=True)
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


def test_a_half_open_tcp_connection_ends_the_solve(docker_current, client_for, busybox, network, unique, monkeypatch):
    """tcp:// to a daemon whose connection goes silent mid-RUN (packets dropped, nothing closed): the liveness
    check ends the solve with DaemonError instead of waiting forever (bounds patched short for the test)."""
    from envd_jupyter.buildkit import _lifecycle
    from tlsrelay import TLSRelay

    monkeypatch.setattr(_lifecycle, "LIVENESS_INTERVAL", 0.5)
    monkeypatch.setattr(_lifecycle, "LIVENESS_TIMEOUT", 2.0)
    relay = TLSRelay(client_for(docker_current).transport.channel_target, None)
    marker = f"halfopen-{unique}"
    try:
        with connect(f"tcp://127.0.0.1:{relay.port}") as client:
            step = _Step(busybox, network, marker, relay.frozen.set)
            with pytest.raises(DaemonError, match="stopped answering mid-solve"):
                client.solve(step.state, on_event=step.on_event, timeout=WAIT * 4)
    finally:
        relay.frozen.clear()
        relay.close()
    _eventually(lambda: not _procs_with(marker), "the step is cancelled once the connection moves again")
