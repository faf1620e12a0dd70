"""The Lab panel's build detail never shows a secret a step printed (issue 17 item 7), on a real daemon.

The daemon's own history keeps what a step printed, unmasked, and the panel replays it; the client
masks the values it offered, so for a build the notebook recorded as offered secrets the detail shows
the archive's masked log lines instead of the replay.
"""

from __future__ import annotations

import json
import uuid

import pytest

from envd_jupyter import buildkit, llb
from tests.server.conftest import GONE_BUILDER, archive_entry, body
from tests.server.test_daemon_history import finished_build, in_thread


@pytest.fixture
def builders(gone_address, docker_current):
    return {"current": f"docker+unix://{docker_current}", GONE_BUILDER: gone_address}


@pytest.fixture
def current(docker_current):
    client = buildkit.connect(f"docker+unix://{docker_current}")
    yield client
    client.close()


async def test_a_build_offered_secrets_shows_the_masked_logs_not_the_daemons(jp_fetch, archive, current, daemon_env):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    state = llb.image(daemon_env["ENVD_IMAGE_BUSYBOX"]).run(
        f"echo run {uuid.uuid4().hex}; echo token is $TOK", mounts=[llb.secret_env("TOK", "tok")],
        network=daemon_env.get("ENVD_RUN_NETWORK", "sandbox"), name="prints the secret")

    def build():
        return current.solve(state, secrets={"tok": secret.encode()}, name="secret-logs")

    result = await finished_build(build, current)
    replayed = json.dumps(body(await jp_fetch("envd", "api", "history", "current", result.ref)))
    assert f"token is {secret}" in replayed  # what the daemon keeps: why the archive's lines are shown instead

    steps = result.model.to_dict()["vertices"]
    await in_thread(archive.add, archive_entry(1, id=result.ref, builder="current", steps=steps, secrets=["tok"]))
    item = body(await jp_fetch("envd", "api", "history", "current", result.ref))["item"]
    shown = json.dumps(item)
    assert secret not in shown
    [logs] = [entry for entry in item["logs"] if entry["name"] == "prints the secret"]
    assert "token is ***" in logs["lines"]
    assert any("offered secrets (tok)" in note for note in item["notes"])
