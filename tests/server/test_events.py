"""The events WebSocket: archive changes reach every open panel from one shared check, a builder that
cannot be watched is an error message, and nothing runs once the last panel has gone."""

from __future__ import annotations

import asyncio
import json

from tests.server.conftest import GONE_BUILDER, archive_entry

WAIT = 20.0


async def next_message(socket, wanted) -> dict:
    """The next message ``wanted(message)`` accepts, skipping others (bounded)."""
    async def read() -> dict:
        while True:
            text = await socket.read_message()
            assert text is not None, "the server closed the socket"
            message = json.loads(text)
            if wanted(message):
                return message
    return await asyncio.wait_for(read(), WAIT)


async def until(predicate) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), WAIT)


async def test_a_builder_that_cannot_be_watched_is_an_error_message(jp_ws_fetch):
    socket = await jp_ws_fetch("envd", "api", "events")
    message = await next_message(socket, lambda m: m["type"] == "error")
    assert message["builder"] == GONE_BUILDER and "\n" not in message["error"]
    socket.close()


async def test_an_archived_build_reaches_every_panel_from_one_check(jp_ws_fetch, jp_serverapp, archive):
    hub = jp_serverapp.web_app.settings["envd_events"]
    sockets = [await jp_ws_fetch("envd", "api", "events") for _ in range(5)]
    await until(lambda: hub.listeners == 5 and hub.archive_reads >= 1)  # the first read is the baseline
    reads = hub.archive_reads
    await asyncio.get_running_loop().run_in_executor(None, archive.add, archive_entry(42, status="failed"))
    for socket in sockets:
        message = await next_message(socket, lambda m: m.get("kind") == "archived")
        assert message["type"] == "history" and message["builder"] == "kernel-builder"
        assert (message["item"]["id"], message["item"]["status"], message["item"]["source"]) == (
            "build0042", "failed", "archive")
    assert hub.archive_reads - reads <= 3  # per change of the file, not per panel (5 here)
    for socket in sockets:
        socket.close()
    await until(lambda: hub.listeners == 0)
    assert hub.watched == []
