"""The endpoints on the real daemons: builders as they report themselves, a build of the project's
``docker buildx`` peer CLI in the merged history and its detail, pin/unpin/delete, a daemon without
history (dockerd 20.10), live events from one watch per daemon, and the archive keeping a build the daemon
dropped."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from tornado.httpclient import HTTPClientError

from envd_jupyter import buildkit, llb
from tests.server.conftest import GONE_BUILDER, archive_entry, body
from tests.server.test_events import next_message, until


@pytest.fixture
def builders(gone_address, docker_current, docker_old):
    return {"current": f"docker+unix://{docker_current}", "old": f"docker+unix://{docker_old}",
            GONE_BUILDER: gone_address}


@pytest.fixture
def current(docker_current):
    client = buildkit.connect(f"docker+unix://{docker_current}")
    yield client
    client.close()


@pytest.fixture
def our_build(current, daemon_env):
    """A fresh build by our own client on "current"; its ref."""
    def build() -> str:
        token = uuid.uuid4().hex[:12]
        state = llb.image(daemon_env["ENVD_IMAGE_BUSYBOX"]).run(f"echo {token}", network=daemon_env.get(
            "ENVD_RUN_NETWORK", "sandbox"))
        return current.solve(state, name=f"server-test-{token}").ref
    return build


async def in_thread(call, *args):
    return await asyncio.get_running_loop().run_in_executor(None, call, *args)


async def finished_build(make, client, *args):
    """``make(*args)``'s build, once the daemon's record of it is complete (it may lag the client's answer)."""
    made = await in_thread(make, *args)
    ref = getattr(made, "ref", made)
    await until(lambda: [r.status for r in client.history(ref=ref)] not in ([], ["running"]))
    return made


async def test_builders_report_each_daemon(jp_fetch):
    reply = {b["name"]: b for b in body(await jp_fetch("envd", "api", "builders"))["builders"]}
    assert reply["current"]["healthy"] and reply["current"]["version"] and reply["current"]["caps"]
    assert any(p.startswith("linux/") for p in reply["current"]["platforms"])
    assert reply["old"]["healthy"]
    assert not reply[GONE_BUILDER]["healthy"]


class TestTheProjectDaemons:
    @pytest.fixture
    def envd_config(self, archive_path):
        return {"history": str(archive_path)}  # no fleet file: fleet.project_builders()

    async def test_without_a_fleet_file_the_builders_are_the_project_daemons(self, jp_fetch, daemon_env):
        reply = body(await jp_fetch("envd", "api", "builders"))["builders"]
        assert [b["name"] for b in reply] == ["current", "classic", "old"]
        assert reply[0]["address"] == f"docker+unix://{daemon_env['ENVD_DOCKER_CURRENT']}" and reply[0]["healthy"]


async def test_a_buildx_build_is_in_the_merged_history_with_its_step_counts(jp_fetch, buildx_build, docker_current,
                                                                             current):
    made = await finished_build(buildx_build, current, docker_current)
    reply = body(await jp_fetch("envd", "api", "history", params={"builder": "current", "name": "Dockerfile",
                                                                   "limit": "500"}))
    [item] = [i for i in reply["items"] if i["id"] == made.ref]
    assert (item["builder"], item["source"], item["status"], item["name"]) == ("current", "daemon", "ok", "Dockerfile")
    assert item["total"] >= 3 and item["ran"] >= 2 and item["cached"] < item["total"]
    assert reply["errors"] == {}
    everything = body(await jp_fetch("envd", "api", "history"))
    assert set(everything["errors"]) == {"old", GONE_BUILDER}
    assert "no build history" in everything["errors"]["old"]


async def test_the_detail_of_a_buildx_build_has_steps_logs_and_provenance(jp_fetch, buildx_build, docker_current,
                                                                          current):
    made = await finished_build(buildx_build, current, docker_current)
    item = body(await jp_fetch("envd", "api", "history", "current", made.ref))["item"]
    assert (item["id"], item["source"], item["notes"]) == (made.ref, "daemon", [])
    [run] = [s for s in item["steps"] if f"buildx-{made.token}" in s["name"]]
    assert run["cached"] is False and run["duration"] is not None and run["state"] == "done"
    assert [s["summary"] for s in item["provenance"] if s["kind"] == "exec"] == [
        f"/bin/sh -c echo buildx-{made.token} > /token", "/bin/sh -c echo two > /two"]
    assert item["graph"] is None and item["scheduling"] is None  # only our own builds are archived with them


async def test_pin_unpin_and_delete_reach_the_daemon(jp_fetch, current, our_build):
    ref = await in_thread(our_build)
    pinned = body(await jp_fetch("envd", "api", "history", "current", ref, "pin", method="POST",
                                 body=json.dumps({"pinned": True})))
    assert (pinned["pinned"], pinned["daemon"], pinned["archive"]) == (True, True, False)
    assert (await in_thread(lambda: current.history(ref=ref)))[0].pinned
    await jp_fetch("envd", "api", "history", "current", ref, "pin", method="POST", body=json.dumps({"pinned": False}))
    assert not (await in_thread(lambda: current.history(ref=ref)))[0].pinned
    listed = body(await jp_fetch("envd", "api", "history", params={"builder": "current", "limit": "500"}))["items"]
    assert [i["pinned"] for i in listed if i["id"] == ref] == [False]  # the page before the delete (cached after)
    deleted = body(await jp_fetch("envd", "api", "history", "current", ref, method="DELETE"))
    assert deleted["deleted"] and deleted["daemon"]
    assert await in_thread(lambda: current.history(ref=ref)) == []
    listed = body(await jp_fetch("envd", "api", "history", params={"builder": "current", "limit": "500"}))["items"]
    assert ref not in [i["id"] for i in listed]  # not served from the listing kept from before
    with pytest.raises(HTTPClientError) as gone:
        await jp_fetch("envd", "api", "history", "current", ref)
    assert gone.value.code == 404


async def test_a_daemon_without_history_is_409_for_one_build(jp_fetch):
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("envd", "api", "history", "old", "abc", "pin", method="POST", body=b'{"pinned": true}')
    assert refused.value.code == 409 and "no build history" in json.loads(refused.value.response.body)["message"]


async def test_a_kernel_entry_joins_the_daemon_record(jp_fetch, archive, our_build):
    ref = await in_thread(our_build)
    now = time.time()
    await in_thread(archive.add, archive_entry(1, id=ref, builder="current", notebook="joined.ipynb", state="app",
                                               created=now, completed=now))
    [item] = [i for i in body(await jp_fetch("envd", "api", "history", params={"builder": "current"}))["items"]
              if i["id"] == ref]
    assert (item["source"], item["notebook"], item["state"]) == ("both", "joined.ipynb", "app")
    detail = body(await jp_fetch("envd", "api", "history", "current", ref))["item"]
    assert detail["source"] == "both" and detail["graph"]["nodes"] and detail["scheduling"]


async def test_one_watch_per_daemon_feeds_every_panel_and_the_archive_keeps_what_the_daemon_dropped(
        jp_ws_fetch, jp_fetch, jp_serverapp, archive, current, buildx_build, docker_current):
    hub = jp_serverapp.web_app.settings["envd_events"]
    sockets = [await jp_ws_fetch("envd", "api", "events") for _ in range(3)]
    await until(lambda: hub.watched == ["current"])
    made = await in_thread(buildx_build, docker_current)
    for socket in sockets:
        message = await next_message(socket, lambda m: m.get("kind") == "completed" and m["item"]["id"] == made.ref)
        assert message["builder"] == "current" and message["item"]["status"] == "ok"
    assert hub.watched == ["current"]  # still one watch for three panels
    await until(lambda: archive.get(made.ref) is not None)  # the finished build was copied
    await in_thread(current.delete_history, made.ref)
    deleted = await next_message(sockets[0], lambda m: m.get("kind") == "deleted" and m["item"]["id"] == made.ref)
    assert deleted["builder"] == "current"
    [kept] = [i for i in body(await jp_fetch("envd", "api", "history", params={"builder": "current"}))["items"]
              if i["id"] == made.ref]
    assert (kept["source"], kept["status"]) == ("archive", "ok") and kept["total"] >= 3
    for socket in sockets:
        socket.close()
    await until(lambda: hub.listeners == 0 and hub.watched == [])
