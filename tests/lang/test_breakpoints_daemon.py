"""A ``breakpoint()`` written in a cell pauses the stepper there, on every daemon flavour, in its graph form."""

import uuid

import pytest

from envd_jupyter.buildkit import connect
from envd_jupyter.lang import Workspace

STARLARK = '''base(image="{base}")
run(["echo {tag} > /one"])
breakpoint()
run(["echo two > /two"])
'''
PYTHON = 'image("{base}").run("echo {tag} > /one").breakpoint().run("echo two > /two")'


@pytest.mark.parametrize("language, body", [("starlark", STARLARK), ("python", PYTHON)])
def test_the_stepper_pauses_after_the_step_before_the_breakpoint(any_daemon, daemon_env, tmp_path, language, body):
    tag = uuid.uuid4().hex[:12]  # a fresh step, so it really runs
    ws = Workspace(context=tmp_path, network="host" if daemon_env["ENVD_RUN_NETWORK"] == "host" else None)
    cell = ws.run_cell(1, body.format(base=daemon_env["ENVD_IMAGE_BUSYBOX"], tag=tag), name="paused",
                       language=language)
    with connect(f"docker+unix://{any_daemon}") as client, client.interactive(**cell.solve_options()) as build:
        definition = cell.marshal(client.caps())
        stepper = build.stepper(definition)
        paused = stepper.resume()
        assert paused.vertex.name == f"[user] echo {tag} > /one" and not stepper.done and not paused.ref.cached
        assert paused.ref.read_file("/one") == f"{tag}\n".encode()
        assert "two" not in [entry.path for entry in paused.ref.read_dir("/")]
        last = stepper.resume()
        assert last.vertex.name == "[user] echo two > /two" and stepper.done
        assert last.ref.read_file("/two") == b"two\n"


def test_a_breakpoint_shares_the_cache_of_the_same_cell_without_it(docker_current, daemon_env, tmp_path):
    tag = uuid.uuid4().hex[:12]
    ws = Workspace(context=tmp_path, network="host" if daemon_env["ENVD_RUN_NETWORK"] == "host" else None)
    body = STARLARK.format(base=daemon_env["ENVD_IMAGE_BUSYBOX"], tag=tag)
    plain = ws.run_cell(1, body.replace("breakpoint()\n", ""), name="plain", language="starlark")
    marked = ws.run_cell(2, body, name="marked", language="starlark")
    with connect(f"docker+unix://{docker_current}") as client:
        client.solve(plain.definition, timeout=300, **plain.solve_options())
        with client.interactive(**marked.solve_options()) as build:
            stepper = build.stepper(marked.definition)
            assert stepper.resume().ref.cached and stepper.resume().ref.cached and stepper.done
