"""``EnvdService``: what the handlers ask of the fleet, the daemons' history and the archive.

Every daemon or archive call runs in one bounded thread pool and is awaited with a timeout, so the
server's loop never waits on a daemon. A daemon that does not answer becomes an error entry of its
builder (lists) or a 502/504 line (one build's daemon side), never a 500.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable

from envd_jupyter import buildkit, fleet, history
from envd_jupyter.server._errors import DaemonTimeout, DaemonUnavailable, NoHistory, NotFound, ServerError
from envd_jupyter.server._items import detail_item
from envd_jupyter.server._records import CachedBuilder, RecordCache
from envd_jupyter.server._requests import HistoryQuery
from envd_jupyter.server._settings import EnvdServer

# Entries of a history reply's errors that are not builders (no builder name has parentheses).
ARCHIVE_ERROR_KEY = "(archive)"
FLEET_ERROR_KEY = "(fleet)"
ARCHIVE_FAILURES = (OSError, sqlite3.Error, history.ArchiveError)  # they degrade a reply, never fail it


class EnvdService:
    """One fleet (built on first use from ``EnvdServer.fleet`` or the project's daemons), one archive."""

    def __init__(self, settings: EnvdServer):
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=max(1, settings.threads), thread_name_prefix="envd-server")
        self._lock = threading.Lock()
        self._fleet: fleet.Fleet | None = None
        self._archive: history.Archive | None = None
        self.records = RecordCache(settings.listing_ttl)

    # -- plumbing -----------------------------------------------------------------------------
    async def run(self, call: Callable[..., Any], *args: Any, timeout: float | None = None,
                  on_late_result: Callable[[Any], None] | None = None, **kwargs: Any) -> Any:
        """``call`` in the pool, awaited at most ``timeout`` (default ``EnvdServer.timeout``) seconds.

        A call still queued at its timeout is dropped; one already running goes on, and ``on_late_result``
        gets what it returns (a watch to close, not to leak).
        """
        timeout = self.settings.timeout if timeout is None else timeout
        future = self._pool.submit(call, *args, **kwargs)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            if on_late_result is not None:
                future.add_done_callback(lambda done: _hand_over(done, on_late_result))
            raise DaemonTimeout(f"no answer within {timeout:g} s") from None

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

    async def address(self, builder: str) -> str:
        the_fleet = await self.run(self.fleet_now)
        return the_fleet.address(builder) if builder in the_fleet.names else ""

    async def daemon(self, builder: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A daemon call whose failure says which builder failed and why, on one line."""
        try:
            return await self.run(call, *args, **kwargs)
        except buildkit.HistoryNotFound as exc:
            raise NotFound(f"{builder}: {one_line(exc)}") from None
        except buildkit.HistoryUnavailable as exc:
            raise NoHistory(f"{builder}: {one_line(exc)}") from None
        except DaemonTimeout as exc:
            raise DaemonTimeout(f"{builder}: {exc}") from None
        except buildkit.BuildKitError as exc:
            raise DaemonUnavailable(f"{builder}: {one_line(exc)}") from None

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
        """The merged page; a daemon that fails is an ``errors`` entry, an unreadable archive too."""
        errors: dict[str, str] = {}
        try:
            the_fleet = await self.run(self.fleet_now)
            builders = {name: CachedBuilder(the_fleet, name, self.records) for name in the_fleet.names}
        except fleet.FleetError as exc:
            builders, errors[FLEET_ERROR_KEY] = {}, one_line(exc)
        merge = partial(history.merged_history, clients=builders, builder=query.builder, status=query.status,
                        name=query.name, offset=query.offset, limit=query.limit, errors=errors)
        listing = 2 * self.settings.timeout + 1  # a connection, then the daemons' listings in parallel
        try:
            items, total = await self.run(lambda: merge(self.archive_now()), timeout=listing)
        except ARCHIVE_FAILURES as exc:
            errors[ARCHIVE_ERROR_KEY] = one_line(exc)
            items, total = await self.run(merge, None, timeout=listing)
        return {"items": items, "total": total, "errors": errors}

    async def detail(self, builder: str, ref: str) -> dict[str, Any]:
        """One build from the archive's entry and the daemon's record, log replay and provenance."""
        notes: list[str] = []
        archived = await self._archived(lambda archive: archive.get(ref), notes)
        record = model = None
        provenance: list[dict] = []
        try:
            client = await self.client(builder)
            found = await self.daemon(builder, client.history, ref=ref)
            record = found[0] if found else None
            if record is not None and record.status == "running":
                notes.append("still running: its logs are replayed once it completes")
            elif record is not None and (archived or {}).get("secrets"):
                notes.append("logs as the notebook recorded them, secrets masked: the build was offered secrets "
                             f"({', '.join(archived['secrets'])}), which the daemon's own logs may show")
            elif record is not None:
                model = await self.daemon(builder, client.history_logs, ref)
                if archived is None or not archived.get("graph"):
                    provenance = [step.to_dict() for step in await self.daemon(builder, client.history_steps, ref)]
        except NotFound:
            if archived is None:
                raise
        except ServerError as exc:
            if archived is None:
                raise
            notes.append(str(exc))
        if archived is None and record is None:
            raise NotFound(f"{builder}: no build {ref!r} in the daemon's history or the archive")
        return {"item": detail_item(builder, await self.address(builder), archived, record, model, provenance, notes)}

    async def pin(self, builder: str, ref: str, pinned: bool) -> dict[str, Any]:
        """Pin on the daemon (its retention keeps the record) and in the archive, wherever the build is."""
        return await self._update(builder, ref, lambda client: client.pin_history(ref, pinned),
                                  lambda archive: archive.pin(ref, pinned), {"pinned": pinned})

    async def delete(self, builder: str, ref: str) -> dict[str, Any]:
        return await self._update(builder, ref, lambda client: client.delete_history(ref),
                                  lambda archive: archive.delete(ref), {"deleted": True})

    async def _update(self, builder: str, ref: str, on_daemon: Callable[[Any], None],
                      in_archive: Callable[[history.Archive], bool], result: dict[str, Any]) -> dict[str, Any]:
        """Apply a change where the build is; 404 where it is nowhere, the daemon's error where only it could have it."""
        notes: list[str] = []
        daemon_failure: ServerError | None = None
        on_the_daemon = False
        try:
            client = await self.client(builder)
            if await self.daemon(builder, client.history, ref=ref):
                await self.daemon(builder, on_daemon, client)
                on_the_daemon = True
                self.records.forget(builder)
        except NotFound:
            pass
        except ServerError as exc:
            daemon_failure = exc
            notes.append(str(exc))
        in_the_archive = bool(await self._archived(in_archive, notes))
        if not (on_the_daemon or in_the_archive):
            raise daemon_failure or NotFound(f"{builder}: no build {ref!r} in the daemon's history or the archive")
        return {"builder": builder, "id": ref, **result, "daemon": on_the_daemon, "archive": in_the_archive,
                "notes": notes}

    async def _archived(self, call: Callable[[history.Archive], Any], notes: list[str]) -> Any:
        """``call(archive)`` in the pool; an archive that cannot be read is a note and None."""
        try:
            return await self.run(lambda: call(self.archive_now()))
        except ARCHIVE_FAILURES as exc:
            notes.append(f"archive: {one_line(exc)}")
            return None


def _hand_over(done: Any, receiver: Callable[[Any], None]) -> None:
    if not done.cancelled() and done.exception() is None:
        receiver(done.result())


def one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
