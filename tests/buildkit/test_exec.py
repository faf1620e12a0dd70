"""Commands in containers over a solved ref (the gateway's container API), on every daemon flavour."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from envd_jupyter.buildkit import ExecError, ExecResult, LocalDir, SolveError
from envd_jupyter.buildkit._container import check_capable
from envd_jupyter.llb import image

from test_faults import WAIT, _eventually, _interrupt, _procs_with


def test_output_exit_code_and_the_ref_unchanged(any_client, busybox, network, unique, tmp_path):
    out = tmp_path / "out"
    with any_client.interactive(exports=[LocalDir(out)]) as build:
        ref = build.solve(image(busybox).run(f"echo {unique} > /hello", network=network))
        seen: list[tuple[int, bytes]] = []
        result = ref.exec(["sh", "-c", "cat /hello; echo oops >&2; echo written > /new; exit 3"],
                          on_output=lambda fd, data: seen.append((fd, data)))
        assert isinstance(result, ExecResult) and result.exit_code == 3 and not result.ok
        assert result.stdout == f"{unique}\n".encode() and result.stderr == b"oops\n"
        assert b"".join(d for fd, d in seen if fd == 1) == result.stdout
        assert b"".join(d for fd, d in seen if fd == 2) == result.stderr

        # What the command wrote went with its container: not in the ref, not in the next command, not exported.
        assert "new" not in [entry.path for entry in ref.read_dir("/")]
        assert ref.exec(["test", "-e", "/new"]).exit_code == 1
        build.set_result(ref)
    assert (out / "hello").read_text() == f"{unique}\n" and not (out / "new").exists()


def test_user_workdir_env_and_stdin(any_client, busybox, network):
    with any_client.interactive() as build:
        ref = build.solve(image(busybox).run("mkdir -p /work", network=network))
        result = build.exec(ref, ["sh", "-c", 'cat; pwd; id -u; echo "$GREETING"'], user="nobody", cwd="/work",
                            env={"GREETING": "hello there"}, stdin=b"from stdin\n")
    assert result.ok and result.stdout.decode().splitlines() == ["from stdin", "/work", "65534", "hello there"]


def test_a_missing_program_is_a_failed_result(any_client, busybox):
    with any_client.interactive() as build:
        result = build.solve(image(busybox)).exec(["no-such-program-here"])
    assert result.exit_code != 0 and b"no-such-program-here" in result.stderr


def test_timeout_kills_the_command_and_the_build_goes_on(any_client, busybox, unique):
    marker = f"exec-timeout-{unique}"
    with any_client.interactive() as build:
        ref = build.solve(image(busybox))
        with pytest.raises(ExecError, match="still running after 1.0s; killed"):
            ref.exec(["sh", "-c", f"sleep 4242; echo {marker}"], timeout=1.0)
        _eventually(lambda: not _procs_with(marker), "the timed-out command's process is gone")
        assert ref.exec(["echo", "still here"]).stdout == b"still here\n"


@pytest.mark.parametrize("attempt", [0, 1], ids=["interrupt_main", "SIGINT"])
def test_ctrl_c_kills_the_command_and_the_build_stays_open(attempt, any_client, busybox, unique):
    """Ctrl-C once the command surely runs (it has printed): KeyboardInterrupt, its process gone, the ref readable."""
    marker = f"exec-interrupt-{unique}-{attempt}"
    send_interrupt = _interrupt(attempt)
    sent = threading.Event()

    def on_output(fd: int, data: bytes) -> None:
        if b"running" in data and not sent.is_set():
            sent.set()
            threading.Timer(0.2, send_interrupt).start()

    with any_client.interactive(timeout=WAIT * 4) as build:
        ref = build.solve(image(busybox))
        with pytest.raises(KeyboardInterrupt):
            ref.exec(["sh", "-c", f"echo running; sleep 4242; echo {marker}"], on_output=on_output, timeout=WAIT)
        assert sent.is_set()
        _eventually(lambda: not _procs_with(marker), "the interrupted command's process is gone")
        assert ref.exec(["echo", "after"]).stdout == b"after\n"
        assert ref.stat("/bin/sh") is not None


def test_a_daemon_without_the_container_api_is_named():
    old = SimpleNamespace(caps={"solve.base", "readfile"}, address="docker+unix:///run/old.sock")
    with pytest.raises(ExecError, match=r"^the daemon at docker\+unix:///run/old.sock has no gateway container API"):
        check_capable(old)


def _failed_solve(build, busybox, network, unique):
    state = image(busybox).run(f"echo {unique} > /kept").run("echo partial > /half; exit 3", network=network)
    with pytest.raises(SolveError) as caught:
        build.solve(state)
    return caught.value


@pytest.mark.parametrize("flavour", ["docker_current", "docker_classic"])
def test_a_command_runs_over_the_failed_steps_own_filesystem(flavour, request, client_for, busybox, network, unique):
    """What the failing command wrote before it exited non-zero is there, as it was when it failed."""
    client = client_for(request.getfixturevalue(flavour))
    with client.interactive() as build:
        error = _failed_solve(build, busybox, network, unique)
        assert error.exit_code == 3 and error.mounts and error.mounts[0][0] == "/"
        result = build.exec(error, ["cat", "/kept", "/half"])
        assert result.stdout == f"{unique}\npartial\n".encode()


def test_buildkit_0_8_reports_no_failed_filesystem_and_says_so(docker_old, client_for, busybox, network, unique):
    with client_for(docker_old).interactive() as build:
        error = _failed_solve(build, busybox, network, unique)
        assert error.exit_code == 3 and error.mounts == ()
        with pytest.raises(ExecError, match="did not report the failed step's filesystems .BuildKit 0.8"):
            build.exec(error, ["true"])
