"""Chained Starlark builds solved on the real daemons (busybox base): branches, merge, diff, files read back."""

import uuid

from envd_jupyter.buildkit import connect
from envd_jupyter.buildkit import LocalDir
from envd_jupyter.lang import exec_cell
from envd_jupyter.lang._build import solve_environment

BRANCHES = '''def build():
    root = image({busybox!r})
    greeting = root.run("echo hello {tag} > /greeting")
    tool = root.run(["mkdir -p /opt/tool", "echo tool > /opt/tool/version"])
    return merge([greeting, {second}]).run("cat /greeting /opt/tool/version > /both")
'''


def solve_cell(socket_path, daemon_env, second: str, out):
    """Fresh step text per run (a uuid), so the daemon really runs the steps."""
    tag = uuid.uuid4().hex[:8]
    env = exec_cell(BRANCHES.format(busybox=daemon_env["ENVD_IMAGE_BUSYBOX"], tag=tag, second=second),
                    name="cell[7]")
    out.mkdir()
    network = "host" if daemon_env["ENVD_RUN_NETWORK"] == "host" else None
    with connect(f"docker+unix://{socket_path}") as client:
        return tag, solve_environment(client, env, network=network, exports=[LocalDir(out)], timeout=300)


def test_chained_cell_with_merge_builds_on_every_daemon(any_daemon, daemon_env, tmp_path):
    tag, result = solve_cell(any_daemon, daemon_env, "tool", tmp_path / "out")
    assert (tmp_path / "out" / "both").read_text().split() == ["hello", tag, "tool"]
    ran = [v.name for v in result.model.ran() if v.name.startswith("[user]")]
    assert any("echo hello" in name for name in ran) and any("cat /greeting" in name for name in ran)
    (final,) = result.definition.locations(result.definition.head[0])
    assert (final.filename, final.line) == ("cell[7]", 5)


def test_chained_cell_with_diff_on_a_daemon_with_diffop(docker_current, daemon_env, tmp_path):
    tag, _ = solve_cell(docker_current, daemon_env, "diff(root, tool)", tmp_path / "out")
    assert (tmp_path / "out" / "both").read_text().split() == ["hello", tag, "tool"]
    assert (tmp_path / "out" / "bin").exists()  # the busybox root came through the greeting branch
