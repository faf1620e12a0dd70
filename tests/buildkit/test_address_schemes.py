"""Connection-helper addresses: each parses to the command BuildKit's ``client/connhelper/*`` (or the docker
CLI, for ssh to dockerd) runs. kube-pod, podman and nerdctl cannot be reached on this machine, so their
command lines are what is tested; docker+ssh runs for real in test_ssh.py, the process transport in test_stdio.py.
"""

import pytest

from envd_jupyter.buildkit._address import SSH_COMMAND_ENV, Address, AddressError, candidates, helper_argv, parse

SAFETY = ["-T", "-o", "ConnectTimeout=30", "-o", "BatchMode=yes"]

CASES = [
    # buildkit client/connhelper/dockercontainer
    ("docker-container://buildx_buildkit_Builder0", ["docker", "exec", "-i", "buildx_buildkit_Builder0", "buildctl", "dial-stdio"]),
    ("docker-container://bk?context=remote", ["docker", "--context=remote", "exec", "-i", "bk", "buildctl", "dial-stdio"]),
    # ours: the docker host buildx records for a builder made with DOCKER_HOST set
    ("docker-container://bk?host=ssh%3A%2F%2Fci%40h", ["docker", "--host=ssh://ci@h", "exec", "-i", "bk", "buildctl", "dial-stdio"]),
    # podmancontainer, nerdctlcontainer
    ("podman-container://bk", ["podman", "exec", "-i", "bk", "buildctl", "dial-stdio"]),
    ("nerdctl-container://bk", ["nerdctl", "exec", "-i", "bk", "buildctl", "dial-stdio"]),
    ("nerdctl-container://bk?namespace=k8s.io", ["nerdctl", "exec", "--namespace", "k8s.io", "-i", "bk", "buildctl", "dial-stdio"]),
    # kubepod: empty flags are passed as BuildKit passes them (kubectl reads them as "the current one")
    ("kube-pod://buildkitd-0", ["kubectl", "--context=", "--namespace=", "exec", "--container=", "-i", "buildkitd-0",
                                "--", "buildctl", "dial-stdio"]),
    ("kube-pod://buildkitd-0?namespace=ci&context=prod&container=buildkitd",
     ["kubectl", "--context=prod", "--namespace=ci", "exec", "--container=buildkitd", "-i", "buildkitd-0",
      "--", "buildctl", "dial-stdio"]),
    # ssh to buildkitd (buildkit connhelper/ssh) and to dockerd (docker cli connhelper)
    ("ssh://builder.example", ["ssh", *SAFETY, "--", "builder.example", "buildctl dial-stdio"]),
    ("ssh://me@builder.example:2200/run/buildkit/buildkitd.sock",
     ["ssh", "-l", "me", "-p", "2200", *SAFETY, "--", "builder.example",
      "buildctl --addr unix:///run/buildkit/buildkitd.sock dial-stdio"]),
    ("docker+ssh://root@10.0.0.5", ["ssh", "-l", "root", *SAFETY, "--", "10.0.0.5", "docker system dial-stdio"]),
    ("docker+ssh://root@10.0.0.5:22/var/run/other.sock",
     ["ssh", "-l", "root", "-p", "22", *SAFETY, "--", "10.0.0.5", "docker --host=unix:///var/run/other.sock system dial-stdio"]),
    ("docker+ssh://[::1]:2222/", ["ssh", "-p", "2222", *SAFETY, "--", "::1", "docker system dial-stdio"]),
    ("ssh://h/path with space/bk.sock", ["ssh", *SAFETY, "--", "h", "buildctl --addr 'unix:///path with space/bk.sock' dial-stdio"]),
]


@pytest.mark.parametrize(("address", "argv"), CASES, ids=[case[0] for case in CASES])
def test_helper_command_is_buildkits(address, argv):
    parsed = parse(address)
    assert parsed.uses_helper and str(parsed) == address
    assert helper_argv(parsed, environ={}) == argv


def test_docker_host_ssh_is_dockerd_as_the_docker_cli_reads_it():
    (found, *_) = candidates({"DOCKER_HOST": "ssh://deploy@build-host"})
    assert found == Address("docker", "ssh", "deploy@build-host", "DOCKER_HOST")
    assert str(found) == "docker+ssh://deploy@build-host"
    assert helper_argv(found, environ={})[-1] == "docker system dial-stdio"
    assert parse("ssh://deploy@build-host").kind == "buildkitd"  # BUILDKIT_HOST / explicit: buildctl's meaning


def test_ssh_command_and_timeout_are_the_callers():
    argv = helper_argv(parse("docker+ssh://h"), connect_timeout=7.4,
                       environ={SSH_COMMAND_ENV: "/opt/ssh -F '/etc/my ssh/config'"})
    assert argv[:3] == ["/opt/ssh", "-F", "/etc/my ssh/config"]
    assert "ConnectTimeout=7" in argv


@pytest.mark.parametrize(("address", "reason"), [
    ("docker-container://", "lacks a container name"),
    ("docker-container://?context=x", "lacks a container name"),
    ("docker-container://bk?context=x&host=unix%3A%2F%2F%2Fd.sock", "a docker context or a docker host, not both"),
    ("podman-container://", "lacks a container name"),
    ("kube-pod://", "lacks a pod name"),
    ("docker-container://--privileged", "cannot start with '-'"),
    ("kube-pod://-x", "cannot start with '-'"),
    ("kube-pod://Buildkitd_0", "unsupported pod name"),
    ("kube-pod://bk-0?namespace=Bad_NS", "unsupported namespace name"),
    ("kube-pod://bk-0?container=a/b", "unsupported container name"),
    ("ssh://", "no host specified"),
    ("ssh://me:secret@h", "plain-text password is not supported"),
    ("ssh://h?x=1", "unexpected query"),
    ("ssh://h#frag", "unexpected fragment"),
    ("ssh://h:port", "Port could not be cast"),
    ("docker+kube-pod://bk-0", "unsupported scheme"),
    ("npipe:////./pipe/buildkitd", "unsupported scheme"),
])
def test_malformed_helper_addresses_are_refused_when_parsed(address, reason):
    with pytest.raises(AddressError, match=reason):
        parse(address)


def test_a_password_never_reaches_the_error():
    with pytest.raises(AddressError) as refused:
        parse("ssh://me:hunter2@h")
    assert "hunter2" not in str(refused.value)
