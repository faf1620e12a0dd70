"""``EnvdService``: what the handlers ask of the fleet, the daemons' history and the archive.

Every daemon or archive call runs in one bounded thread pool and is awaited with
``EnvdServer.timeout``, so the server's loop never waits on a daemon. A daemon that does not
answer becomes an error entry of its builder (lists) or a 502/504 line (one build), never a 500.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from envd_jupyter import buildkit, fleet, history
from envd_jupyter._errors import ShortError
from envd_jupyter.server._errors import DaemonTimeout, DaemonUnavailable, NoHistory, NotFound, ServerError
from envd_jupyter.server._items import AnsweredHistory, detail_item, record_summary
from envd_jupyter.server._requests import HistoryQuery
from envd_jupyter.server._settings import EnvdServer

_HistoryUnavailable = getattr(buildkit, "HistoryUnavailable", ())  # TEMPORARY until helper history's buildkit lands

# Entries of a history reply's errors that are not builders (no builder name has parentheses).
ARCHIVE_ERROR_KEY = "(archive)"
FLEET_ERROR_KEY = "(fleet)"
ARCHIVE_FAILURES = (OSError, sqlite3.Error, ShortError)  # an unreadable archive degrades a reply, never fails it


class EnvdService:
    """One fleet (built on first use from ``EnvdServer.fleet`` or the project's daemons), one archive."""

    def __init__(self, settings: EnvdServer):
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=max(1, settings.threads), thread_name_prefix="envd-server")
        self._lock = threading.Lock()
        self._fleet: fleet.Fleet | None = None
        self._archive: history.Archive | None = None

    # -- plumbing -----------------------------------------------------------------------------
    async def run(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call`` in the pool, awaited at most ``EnvdServer.timeout`` seconds."""
        future = self._pool.submit(call, *args, **kwargs)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.settings.timeout)
        except asyncio.TimeoutError:
            raise DaemonTimeout(f"no answer within {self.settings.timeout:g} s") from None

    def run_later(self, call: Callable[[], Any]) -> None:
        """``call`` in the pool, not awaited (closing a watch); its failure only ends it."""
        try:
            self._pool.submit(call)
        except RuntimeError:  # the pool was shut down with the server: nothing left to close for
            pass

    def fleet_now(self) -> fleet.Fleet:
        """The fleet (blocking: reads the fleet file once); a FleetError is not kept, the next call retries."""
        with self._lock:
            if self._fleet is None:
                timeout = self.settings.timeout
                self._fleet = (fleet.Fleet.from_file(self.settings.fleet, timeout=timeout) if self.settings.fleet
                               else fleet.Fleet(fleet.project_builders(), timeout=timeout))
            return self._fleet

    def archive_now(self) -> history.Archive:
        with self._lock:
            if self._archive is None:
                self._archive = history.Archive(self.settings.history or None)
            return self._archive

    async def client(self, builder: str) -> buildkit.Client:
        """The connected client of ``builder``: NotFound when the fleet has no such builder."""
        the_fleet = await self.run(self.fleet_now)
        if builder not in the_fleet.names:
            raise NotFound(f"no builder named {builder!r} (known: {', '.join(the_fleet.names)})")
        return await self.daemon(builder, the_fleet.client, builder)

    async def daemon(self, builder: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A daemon call whose failure says which builder failed and why, on one line."""
        try:
            return await self.run(call, *args, **kwargs)
        except _HistoryUnavailable as exc:
            raise NoHistory(f"{builder}: {one_line(exc)}") from None
        except DaemonTimeout as exc:
            raise DaemonTimeout(f"{builder}: {exc}") from None
        except buildkit.BuildKitError as exc:
            raise DaemonUnavailable(f"{builder}: {one_line(exc)}") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._fleet is not None:
                self._fleet.close()

    # -- what the handlers answer --------------------------------------------------------------
    async def builders(self) -> dict[str, Any]:
        """Each builder's report; a fleet that cannot be set up is the reply's ``error``."""
        try:
            the_fleet = await self.run(self.fleet_now)
        except fleet.FleetError as exc:
            return {"builders": [], "error": one_line(exc)}
        try:
            infos = await self.run(the_fleet.builders)
        except DaemonTimeout as exc:
            infos = [fleet.BuilderInfo(name, the_fleet.address(name), False, error=str(exc)) for name in the_fleet.names]
        return {"builders": [info.to_dict() for info in infos]}

    async def history(self, query: HistoryQuery) -> dict[str, Any]:
        """The merged page; each daemon is asked in parallel and one that fails is an ``errors`` entry."""
        errors: dict[str, str] = {}
        try:
            the_fleet = await self.run(self.fleet_now)
            names = [name for name in the_fleet.names if query.builder in (None, name)]
        except fleet.FleetError as exc:
            names, errors[FLEET_ERROR_KEY] = [], one_line(exc)
        answers = await asyncio.gather(*(self._records(name) for name in names), return_exceptions=True)
        answered: dict[str, AnsweredHistory] = {}
        for name, answer in zip(names, answers):
            if isinstance(answer, ServerError):
                errors[name] = str(answer).removeprefix(f"{name}: ")
            elif isinstance(answer, BaseException):
                raise answer
            else:
                answered[name] = AnsweredHistory(answer)
        try:
            archive = await self.run(self.archive_now)
            items, total = await self.run(
                history.merged_history, archive, answered, builder=query.builder, status=query.status,
                name=query.name, offset=query.offset, limit=query.limit)
        except ARCHIVE_FAILURES as exc:
            errors[ARCHIVE_ERROR_KEY] = one_line(exc)
            items, total = _daemon_page(answered, query)
        return {"items": items, "total": total, "errors": errors}

    async def _records(self, builder: str) -> list[Any]:
        client = await self.client(builder)
        return await self.daemon(builder, client.history)

    async def detail(self, builder: str, ref: str) -> dict[str, Any]:
        """One build: the archive's entry and the daemon's record and log replay, whichever exist."""
        record = model = None
        notes: list[str] = []
        try:
            archived = await self.run(lambda: self.archive_now().get(ref))
        except ARCHIVE_FAILURES as exc:
            archived = None
            notes.append(f"archive: {one_line(exc)}")
        try:
            client = await self.client(builder)
            found = await self.daemon(builder, client.history, ref=ref)
            if found:
                record = found[0]
                model = await self.daemon(builder, client.history_logs, ref)
        except NotFound:
            if archived is None or archived.get("builder") != builder:
                raise
        except ServerError as exc:
            if archived is None:
                raise
            notes.append(str(exc))
        if archived is None and record is None:
            raise NotFound(f"{builder}: no build {ref!r} in the daemon's history or the archive")
        return {"item": detail_item(builder, archived, record, model, notes)}

    async def pin(self, builder: str, ref: str, pinned: bool) -> dict[str, Any]:
        client = await self._known_build(builder, ref)
        await self.daemon(builder, client.pin_history, ref, pinned)
        return {"builder": builder, "id": ref, "pinned": pinned}

    async def delete(self, builder: str, ref: str) -> dict[str, Any]:
        client = await self._known_build(builder, ref)
        await self.daemon(builder, client.delete_history, ref)
        return {"builder": builder, "id": ref, "deleted": True}

    async def _known_build(self, builder: str, ref: str) -> buildkit.Client:
        client = await self.client(builder)
        if not await self.daemon(builder, client.history, ref=ref):
            raise NotFound(f"{builder}: no build {ref!r} in the daemon's history")
        return client


def _daemon_page(answered: dict[str, AnsweredHistory], query: HistoryQuery) -> tuple[list[dict], int]:
    """The daemons' records alone, newest first, when the archive cannot be read."""
    items = [record_summary(name, record) for name, answer in answered.items() for record in answer.records
             if (query.status is None or record.status == query.status)
             and (query.name is None or query.name in record.name)]
    items.sort(key=lambda item: item["created"] or 0, reverse=True)
    return items[query.offset:query.offset + query.limit], len(items)


def one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
