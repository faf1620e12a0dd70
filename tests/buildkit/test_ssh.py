"""The process-stdio transport for real: ``docker+ssh://`` through the loopback sshd that scripts/buildkit-up
starts (Debian's openssh-server, a throwaway key), where ``ssh 127.0.0.1 docker system dial-stdio`` reaches the
"current" dockerd, one ssh process for every grpc connection and every session; then a wrong key, a dead host,
and the ssh process killed mid-solve.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from envd_jupyter.buildkit import ConnectError, DaemonError, LocalDir, connect
from envd_jupyter.buildkit._address import SSH_COMMAND_ENV
from envd_jupyter.llb import image, local, scratch

from llbdefs import chain
from test_faults import _eventually, _procs_with, _sleep_step, _when_running


@pytest.fixture
def ssh_address(daemon_env, docker_current, monkeypatch) -> str:
    """The sshd's address; the ssh client reads the project's client config (key, known host, port)."""
    port, config = daemon_env.get("ENVD_SSH_PORT"), daemon_env.get("ENVD_SSH_CONFIG")
    if not port or not config:
        pytest.fail("sshd not up: run scripts/buildkit-up (ENVD_SSH_PORT / ENVD_SSH_CONFIG missing from the env file)")
    monkeypatch.setenv(SSH_COMMAND_ENV, f"ssh -F {config}")
    return f"docker+ssh://root@127.0.0.1:{port}"


def _ssh_children() -> dict[int, str]:
    """Our ssh child processes and their state letter (Z: a zombie nobody reaped)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm == "ssh" and int(fields[1]) == os.getpid():
            found[int(entry.name)] = fields[0]
    return found


def test_solve_upload_and_interactive_build_over_ssh(ssh_address, busybox, network, unique, tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "sub" / "hello.txt").write_text(f"over ssh {unique}\n")
    out = tmp_path / "out"
    with connect(ssh_address) as client:
        assert str(client.address) == ssh_address and client.workers()
        result = client.solve(chain(busybox, [f"echo {unique} > /marker"], network=network))
        assert not result.model.fully_cached

        # A session (its own ssh process, /session upgraded over it): upload a local context, export back.
        state = image(busybox).copy(local("ctx"), "/", "/ctx").run(
            "cat /ctx/sub/hello.txt > /seen", network=network)
        client.solve(scratch().copy(state, "/seen", "/seen"), local_dirs={"ctx": str(ctx)}, exports=[LocalDir(out)])
        assert (out / "seen").read_text() == f"over ssh {unique}\n"

        with client.interactive() as build:
            ref = build.solve(image(busybox).run(f"echo {unique} > /answer", network=network))
            assert ref.read_file("/answer") == f"{unique}\n".encode()
            assert build.exec(ref, ["cat", "/answer"]).stdout == f"{unique}\n".encode()
            assert len(_ssh_children()) >= 2, "the grpc connection and the build's session each have their own ssh"
        assert client.labelled_images(f"envd-jupyter.none={unique}") == []  # dockerd's HTTP API over a helper too
    _eventually(lambda: not _ssh_children(), "closing the client ends and reaps every ssh child")


def _ssh_config_with_other_key(tmp_path: Path, daemon_env) -> Path:
    key = tmp_path / "not_authorized"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    config = tmp_path / "ssh_config"
    project = Path(daemon_env["ENVD_SSH_CONFIG"]).read_text()
    config.write_text("\n".join(line for line in project.splitlines() if "IdentityFile" not in line)
                      + f"\n  IdentityFile {key}\n")
    return config


def test_wrong_key_is_one_clear_line(ssh_address, daemon_env, tmp_path, monkeypatch):
    monkeypatch.setenv(SSH_COMMAND_ENV, f"ssh -F {_ssh_config_with_other_key(tmp_path, daemon_env)}")
    with pytest.raises(ConnectError) as refused:
        connect(ssh_address, timeout=10)
    message = str(refused.value)
    assert "\n" not in message
    assert ssh_address in message and "ssh exited with 255" in message and "Permission denied (publickey)" in message
    _eventually(lambda: not _ssh_children(), "the failed ssh child is reaped")


def test_dead_host_is_one_clear_line(ssh_address, monkeypatch):
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectError) as refused:
        connect(f"docker+ssh://root@127.0.0.1:{port}", timeout=10)
    message = str(refused.value)
    assert "\n" not in message and f"port {port}: Connection refused" in message


def test_missing_ssh_program_is_one_clear_line(ssh_address, monkeypatch):
    monkeypatch.setenv(SSH_COMMAND_ENV, "/nonexistent/ssh")
    with pytest.raises(ConnectError, match=r"cannot run /nonexistent/ssh: No such file or directory"):
        connect(ssh_address, timeout=10)


def test_ssh_killed_mid_solve_ends_the_solve(ssh_address, busybox, unique):
    marker = f"ssh-killed-{unique}"

    def kill_ssh():
        for pid in _ssh_children():
            os.kill(pid, signal.SIGKILL)

    client = connect(ssh_address)
    try:
        with pytest.raises(DaemonError) as lost:
            client.solve(chain(busybox, [_sleep_step(marker)], network="none"), on_event=_when_running(marker, kill_ssh))
        assert ssh_address in str(lost.value)
    finally:
        client.close()
        for pid in _procs_with(marker):  # the step, should dockerd not have cancelled it yet
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _eventually(lambda: not _ssh_children(), "no ssh child outlives the client")


def test_ssh_to_buildkitd_runs_buildctl_dial_stdio_on_the_host(ssh_address, daemon_env):
    """``ssh://`` is buildctl's scheme: the remote command is ``buildctl --addr unix://SOCK dial-stdio``, which
    this host lacks; the remote shell's answer is the reason, so the command line went through sshd as built."""
    address = f"ssh://root@127.0.0.1:{daemon_env['ENVD_SSH_PORT']}/run/buildkit/buildkitd.sock"
    with pytest.raises(ConnectError) as refused:
        connect(address, timeout=10)
    message = str(refused.value)
    assert "\n" not in message and f"{address} (explicit): ssh exited with 127: " in message
    assert "buildctl: command not found" in message


def test_the_sshd_listens_on_loopback_only_and_takes_keys_only(ssh_address, daemon_env):
    port = int(daemon_env["ENVD_SSH_PORT"])
    listeners = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                listeners.append(local.rsplit(":", 1)[0])
    assert listeners == ["0100007F"], "only 127.0.0.1 listens on the sshd's port"
    config = Path(daemon_env["ENVD_SSH_CONFIG"]).with_name("sshd_config")
    effective = subprocess.run(["/usr/sbin/sshd", "-T", "-f", str(config)], capture_output=True, text=True,
                               timeout=30, check=True).stdout.splitlines()
    for setting in ("passwordauthentication no", "kbdinteractiveauthentication no", "authenticationmethods publickey",
                    "allowtcpforwarding no", "permitrootlogin without-password", "allowusers root"):
        assert setting in effective
    assert f"port {port}" in effective and port != 22
