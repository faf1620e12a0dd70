"""The REST endpoints against a real jupyter_server: replies, paging, filters, malformed requests, and a
builder whose daemon went away (an error entry, never a 500)."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from tornado.httpclient import HTTPClientError

from tests.server.conftest import GONE_BUILDER, archive_entry, body


async def refused(jp_fetch, *parts, code: int, **options) -> str:
    """The request fails with ``code`` and one line of JSON; returns its message."""
    with pytest.raises(HTTPClientError) as failure:
        await jp_fetch(*parts, **options)
    assert failure.value.code == code
    text = failure.value.response.body.decode()
    assert "\n" not in text.strip()
    message = json.loads(text)["message"]
    assert message and "\n" not in message
    return message


@pytest.fixture
def filled(archive):
    for number in range(120):
        archive.add(archive_entry(number, status="failed" if number % 10 == 0 else "ok",
                                  error="RUN make: exit code 2" if number % 10 == 0 else ""))
    return archive


async def test_builders_lists_a_gone_daemon_as_unhealthy(jp_fetch, gone_address):
    reply = body(await jp_fetch("envd", "api", "builders"))
    [gone] = reply["builders"]
    assert (gone["name"], gone["address"], gone["healthy"]) == (GONE_BUILDER, gone_address, False)
    assert gone["error"] and "\n" not in gone["error"]


async def test_history_pages_the_archive_newest_first(jp_fetch, filled):
    first = body(await jp_fetch("envd", "api", "history", params={"limit": "50"}))
    second = body(await jp_fetch("envd", "api", "history", params={"offset": "50", "limit": "50"}))
    last = body(await jp_fetch("envd", "api", "history", params={"offset": "100", "limit": "50"}))
    assert first["total"] == second["total"] == last["total"] == 120
    ids = [item["id"] for page in (first, second, last) for item in page["items"]]
    assert ids == [f"build{n:04d}" for n in range(119, -1, -1)]
    assert [len(page["items"]) for page in (first, second, last)] == [50, 50, 20]
    item = first["items"][0]
    assert (item["source"], item["notebook"], item["state"], item["status"]) == ("archive", "analysis.ipynb",
                                                                                 "state119", "ok")
    assert "steps" not in item and "graph" not in item  # summaries only


async def test_history_reports_a_gone_daemon_beside_the_archive(jp_fetch, filled):
    reply = body(await jp_fetch("envd", "api", "history"))
    assert set(reply["errors"]) == {GONE_BUILDER}
    assert reply["errors"][GONE_BUILDER] and "\n" not in reply["errors"][GONE_BUILDER]
    assert len(reply["items"]) == 50 and reply["total"] == 120  # the default page


async def test_history_filters_by_status_name_and_builder(jp_fetch, filled, archive):
    failed = body(await jp_fetch("envd", "api", "history", params={"status": "failed", "limit": "500"}))
    assert failed["total"] == 12 and {item["status"] for item in failed["items"]} == {"failed"}
    named = body(await jp_fetch("envd", "api", "history", params={"name": "state11"}))
    assert sorted(item["state"] for item in named["items"]) == ["state11"] + [f"state{n}" for n in range(110, 120)]
    archive.add(archive_entry(500, builder="other"))
    other = body(await jp_fetch("envd", "api", "history", params={"builder": "other"}))
    assert [item["id"] for item in other["items"]] == ["build0500"] and other["errors"] == {}


@pytest.mark.parametrize("params, mistake", [
    ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"offset": "-1"}, "offset"), ({"offset": "1e3"}, "offset"), ({"status": "done"}, "status"),
    ({"builder": "../etc"}, "builder"), ({"name": "x" * 201}, "name"), ({"page": "2"}, "unknown parameter"),
])
async def test_malformed_history_queries_are_400(jp_fetch, params, mistake):
    assert mistake in await refused(jp_fetch, "envd", "api", "history", params=params, code=400)


async def test_a_repeated_parameter_is_400(jp_fetch):
    message = await refused(jp_fetch, "envd", "api", "history", params=[("limit", "5"), ("limit", "6")], code=400)
    assert "limit" in message


async def test_detail_of_an_archived_build(jp_fetch, filled):
    item = body(await jp_fetch("envd", "api", "history", "kernel-builder", "build0007"))["item"]
    assert (item["id"], item["status"], item["source"], item["total"], item["cached"]) == ("build0007", "ok",
                                                                                         "archive", 3, 1)
    assert item["steps"][0]["duration"] == 2.0 and item["graph"]["nodes"][0]["kind"] == "exec"
    assert item["scheduling"] == [{"pick": "kernel-builder", "scores": {"kernel-builder": 100}}]
    assert item["logs"] == [{"digest": item["steps"][0]["digest"], "name": "RUN make", "lines": ["compiling", "done"]}]


async def test_detail_through_a_gone_daemon_keeps_the_archive_and_says_why(jp_fetch, filled):
    item = body(await jp_fetch("envd", "api", "history", GONE_BUILDER, "build0003"))["item"]
    assert item["id"] == "build0003" and item["steps"]
    [note] = item["notes"]
    assert note.startswith(f"{GONE_BUILDER}: ")


async def test_detail_of_a_missing_build_on_a_gone_daemon_is_502(jp_fetch):
    assert GONE_BUILDER in await refused(jp_fetch, "envd", "api", "history", GONE_BUILDER, "nosuchbuild", code=502)


async def test_detail_of_an_unknown_build_is_404(jp_fetch, filled):
    assert "nosuchbuilder" in await refused(jp_fetch, "envd", "api", "history", "nosuchbuilder", "nosuchbuild",
                                            code=404)


@pytest.mark.parametrize("path", [
    "envd/api/history/current/..%2F..%2Fetc%2Fpasswd", "envd/api/history/cur%20rent/abc",
    "envd/api/history/current/" + "a" * 129, "envd/api/history/-x/abc",
])
async def test_bad_ids_are_400(jp_fetch, path):
    await refused(jp_fetch, path, code=400)


async def test_unknown_endpoints_are_json_404(jp_fetch):
    for path in ("envd/api", "envd/api/", "envd/api/histories", "envd/api/history/a/b/c"):
        assert "no endpoint" in await refused(jp_fetch, path, code=404)


@pytest.mark.parametrize("payload", [b"", b"pinned", b"[]", b'{"pinned": 1}', b'{"pinned": true, "x": 1}',
                                     b'{"pinned": "yes"}', b"\xff", b'{"pinned": true}' + b" " * 2000])
async def test_malformed_pin_bodies_are_400(jp_fetch, payload):
    message = await refused(jp_fetch, "envd", "api", "history", GONE_BUILDER, "abc", "pin", method="POST",
                            body=payload, allow_nonstandard_methods=True, code=400)
    assert message.startswith("body:")


async def test_pin_and_delete_on_a_gone_daemon_are_502(jp_fetch):
    pin = await refused(jp_fetch, "envd", "api", "history", GONE_BUILDER, "abc", "pin", method="POST",
                        body=b'{"pinned": true}', code=502)
    delete = await refused(jp_fetch, "envd", "api", "history", GONE_BUILDER, "abc", method="DELETE", code=502)
    assert pin.startswith(f"{GONE_BUILDER}: ") and delete.startswith(f"{GONE_BUILDER}: ")


async def test_pin_on_an_unknown_builder_is_404(jp_fetch):
    await refused(jp_fetch, "envd", "api", "history", "elsewhere", "abc", "pin", method="POST",
                  body=b'{"pinned": false}', code=404)


class TestMisconfigured:
    @pytest.fixture
    def envd_config(self, tmp_path, archive_path):
        return {"fleet": str(tmp_path / "no-such-fleet.yaml"), "history": str(tmp_path)}  # a directory

    async def test_a_missing_fleet_file_and_an_unreadable_archive_are_errors_not_500(self, jp_fetch):
        builders = body(await jp_fetch("envd", "api", "builders"))
        assert builders["builders"] == [] and "no-such-fleet.yaml" in builders["error"]
        history = body(await jp_fetch("envd", "api", "history"))
        assert history["items"] == [] and history["total"] == 0
        assert set(history["errors"]) == {"(fleet)", "(archive)"}


class TestAHungDaemon:
    """A daemon that accepts the connection and never answers: its calls time out in the pool while the
    server goes on answering."""

    @pytest.fixture
    def hung_address(self, tmp_path):
        path = tmp_path / "hung.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(16)  # connections wait in the backlog; nothing is ever read or written
        yield f"docker+unix://{path}"
        listener.close()

    @pytest.fixture
    def builders(self, hung_address):
        return {"hung": hung_address}

    @pytest.fixture
    def envd_config(self, fleet_file, archive_path):
        return {"fleet": str(fleet_file), "history": str(archive_path), "timeout": 3.0}

    async def test_the_server_answers_while_a_daemon_hangs_and_the_daemon_is_an_error_entry(self, jp_fetch):
        builders = asyncio.ensure_future(jp_fetch("envd", "api", "builders"))
        history = asyncio.ensure_future(jp_fetch("envd", "api", "history"))
        status = await jp_fetch("api", "status")  # the loop is free while both wait on the daemon
        assert status.code == 200 and not builders.done() and not history.done()
        [hung] = body(await builders)["builders"]
        assert not hung["healthy"] and hung["error"] and "\n" not in hung["error"]
        assert set(body(await history)["errors"]) == {"hung"}
