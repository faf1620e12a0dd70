"""The process-stdio transport to a standalone buildkitd (``ssh://``, ``kube-pod://``, ``*-container://``).

BuildKit's helpers run ``buildctl dial-stdio`` beside the daemon; this machine has no buildctl, so its part is
played by dialstdio.py (the same byte copy) in front of the current dockerd's plain gRPC endpoint. The daemon,
the solves and the sessions (inside Control.Session, as with buildkitd) are real. Then a helper's stderr as
the one-line reason, a helper that ignores EOF and TERM, and a helper killed mid-solve.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from envd_jupyter.buildkit import ConnectError, DaemonError, LocalDir, connect
from envd_jupyter.buildkit._address import SSH_COMMAND_ENV, parse
from envd_jupyter.buildkit._client import Client
from envd_jupyter.buildkit._stdio import HelperProcess, _last_line
from envd_jupyter.buildkit._stdio_transport import StdioTransport
from envd_jupyter.llb import image, local, scratch

from llbdefs import chain
from test_faults import _eventually, _procs_with, _sleep_step, _when_running

DIAL_STDIO = str(Path(__file__).with_name("dialstdio.py"))


@pytest.fixture
def stdio_client(docker_current, client_for):
    """A Client whose every grpc connection is a dialstdio.py child in front of the current daemon."""
    endpoint = client_for(docker_current).transport.channel_target
    transport = StdioTransport(parse("ssh://buildkitd.invalid"), argv=[sys.executable, DIAL_STDIO, endpoint])
    client = Client(transport, timeout=30)
    yield client
    client.close()


def _helpers() -> list[int]:
    return [pid for pid in _procs_with(DIAL_STDIO) if pid != os.getpid()]


def test_solve_upload_and_interactive_build_through_helpers(stdio_client, busybox, network, unique, tmp_path):
    assert stdio_client.transport.uses_control_session  # sessions ride inside the helper's gRPC stream
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text(f"through a helper {unique}\n")
    out = tmp_path / "out"
    result = stdio_client.solve(chain(busybox, [f"echo {unique} > /marker"], network=network))
    assert not result.model.fully_cached
    state = image(busybox).copy(local("ctx"), "/", "/ctx").run("cat /ctx/hello.txt > /seen", network=network)
    stdio_client.solve(scratch().copy(state, "/seen", "/seen"), local_dirs={"ctx": str(ctx)}, exports=[LocalDir(out)])
    assert (out / "seen").read_text() == f"through a helper {unique}\n"
    with stdio_client.interactive() as build:
        ref = build.solve(image(busybox).run(f"echo {unique} > /answer", network=network))
        assert ref.read_file("/answer") == f"{unique}\n".encode()
    assert _helpers(), "the channel's connections run through helper children"
    stdio_client.close()
    _eventually(lambda: not _helpers(), "closing the client ends and reaps every helper")


def test_helper_killed_mid_solve_ends_the_solve(stdio_client, busybox, unique):
    marker = f"helper-killed-{unique}"

    def kill_helpers():
        for pid in _helpers():
            os.kill(pid, signal.SIGKILL)

    try:
        with pytest.raises(DaemonError) as lost:
            stdio_client.solve(chain(busybox, [_sleep_step(marker)], network="none"),
                               on_event=_when_running(marker, kill_helpers))
        assert "ssh://buildkitd.invalid" in str(lost.value)
    finally:
        for pid in _procs_with(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_failing_helper_is_the_connect_error(tmp_path, monkeypatch):
    """A helper that cannot reach its daemon: its last stderr line (ssh's notices skipped) is the reason."""
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text("#!/bin/sh\necho \"Warning: Permanently added 'h' (ED25519) to the list of known hosts.\" >&2\n"
                        "echo 'first attempt' >&2\necho 'kex_exchange_identification: Connection closed by remote host' >&2\n"
                        "exit 255\n")
    fake_ssh.chmod(fake_ssh.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv(SSH_COMMAND_ENV, str(fake_ssh))
    with pytest.raises(ConnectError) as refused:
        connect("ssh://builder.invalid/run/buildkit/buildkitd.sock", timeout=5)
    message = str(refused.value)
    assert "\n" not in message
    assert ("ssh://builder.invalid/run/buildkit/buildkitd.sock (explicit): fake-ssh exited with 255: "
            "kex_exchange_identification: Connection closed by remote host") in message


def test_missing_helper_program_is_the_connect_error():
    """kubectl is on this machine, podman is not: a missing program is named, not a grpc error."""
    with pytest.raises(ConnectError, match=r"podman-container://bk \(explicit\): cannot run podman: No such file"):
        connect("podman-container://bk", timeout=5)


def test_helper_that_ignores_eof_and_term_is_killed_and_reaped():
    helper = HelperProcess(["/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"])
    helper.socket.close()
    _eventually(lambda: helper.process.poll() is not None, "the helper is stopped after EOF and TERM are ignored")
    assert helper.process.returncode == -signal.SIGKILL
    assert helper.failure(0) == "sh was killed by signal 9"


def test_a_helper_that_leaves_cleanly_has_no_failure():
    helper = HelperProcess(["/bin/true"])
    assert helper.failure() == ""
    helper.socket.close()


def test_last_line_is_printable_and_short():
    assert _last_line("Warning: Permanently added 'x'\r\nreal reason\r\n\r\n") == "real reason"
    assert _last_line("bad\x1b[31m colour\n") == "bad [31m colour"
    assert len(_last_line("x" * 1000)) == 300
    assert _last_line("") == ""
