"""``EventHub``: live history for every open panel from one watch per builder and one archive check.

BuildKit pushes history events (``Client.watch_history``, one stream per daemon, not one per
panel); the archive is written by kernels in other processes, so its file is stat'ed once per
``archive_check_interval`` and read only when it changed. Nothing runs while no panel listens.
"""

from __future__ import annotations

import asyncio
import os
from functools import partial
from typing import Any, Callable

from tornado.ioloop import PeriodicCallback

from envd_jupyter import fleet
from envd_jupyter.server._errors import NoHistory, ServerError
from envd_jupyter.server._items import archive_summary, record_summary
from envd_jupyter.server._service import ARCHIVE_FAILURES, EnvdService, one_line

ARCHIVE_RECENT = 50  # newest archive entries compared at each change of the archive file
Listener = Callable[[dict[str, Any]], None]


class EventHub:
    """Fans ``{"type": "history", ...}`` and ``{"type": "error", ...}`` messages out to listeners."""

    def __init__(self, service: EnvdService):
        self._service = service
        self._listeners: list[Listener] = []
        self._watches: dict[str, Any] = {}  # builder -> HistoryWatch
        self._starting: set[str] = set()
        self._no_history: set[str] = set()  # builders whose daemon keeps none: not tried again
        # Bumped at each stop: work begun before it (a watch opening, an archive read) is dropped when it
        # ends, never cancelled halfway (a watch opened in the pool would be left running).
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: list[PeriodicCallback] = []
        self._tasks: set[asyncio.Task] = set()  # held until done (the loop keeps only weak references)
        self._archive_mark: tuple | None = None
        self._archive_seen: set[tuple[str, Any]] | None = None
        self._archive_busy = False
        self.archive_reads = 0  # archive lists made: one per change of its file, however many panels listen

    @property
    def watched(self) -> list[str]:
        """Builders whose history is being watched now."""
        return sorted(self._watches)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)
        if len(self._listeners) == 1:
            self._start()

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
            if not self._listeners:
                self._stop()

    # -- lifecycle -----------------------------------------------------------------------------
    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        settings = self._service.settings
        self._timers = [PeriodicCallback(lambda: self._spawn(self._watch_all()), settings.watch_retry_interval * 1000),
                        PeriodicCallback(lambda: self._spawn(self._check_archive()),
                                         settings.archive_check_interval * 1000)]
        for timer in self._timers:
            timer.start()
        self._spawn(self._watch_all())
        self._spawn(self._check_archive())

    def _stop(self) -> None:
        self._generation += 1
        for timer in self._timers:
            timer.stop()
        watches, self._watches = self._watches, {}
        self._no_history.clear()
        for builder in watches:
            self._service.records.watching(builder, False)
        self._archive_mark = self._archive_seen = None
        for watch in watches.values():  # closing may wait for the daemon: not on the loop
            self._service.run_later(watch.close)

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _publish(self, message: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            listener(message)

    # -- daemons -------------------------------------------------------------------------------
    async def _watch_all(self) -> None:
        generation = self._generation
        try:
            names = (await self._service.run(self._service.fleet_now)).names
        except (fleet.FleetError, ServerError) as exc:
            self._publish({"type": "error", "builder": None, "error": one_line(exc)})
            return
        busy = set(self._watches) | self._no_history | self._starting
        for name in names:
            if generation == self._generation and name not in busy:
                self._spawn(self._watch(name, generation))

    async def _watch(self, builder: str, generation: int) -> None:
        self._starting.add(builder)
        try:
            client = await self._service.client(builder)
            address = await self._service.address(builder)
            watch = await self._service.daemon(builder, client.watch_history, partial(self._on_event, builder, address),
                                               partial(self._on_watch_error, builder),
                                               on_late_result=lambda late: late.close())
        except ServerError as exc:  # tried again at the next retry while a panel listens, unless it has no history
            if isinstance(exc, NoHistory):
                self._no_history.add(builder)
            self._publish({"type": "error", "builder": builder, "error": one_line(exc)})
            return
        finally:
            self._starting.discard(builder)
        if generation != self._generation:
            self._service.run_later(watch.close)
        else:
            self._watches[builder] = watch
            self._service.records.watching(builder, True)

    def _on_event(self, builder: str, address: str, kind: str, record: Any) -> None:
        """In the watch's thread: a finished build is copied into the archive (to outlive the daemon's
        retention), and the message handed to the loop."""
        self._service.records.apply(builder, kind, record)
        if kind == "completed":
            self._service.run_later(lambda: self._service.archive_now().remember(builder, address, [record]))
        message = {"type": "history", "builder": builder, "kind": kind,
                   "item": record_summary(builder, address, record)}
        self._to_loop(self._publish, message)

    def _on_watch_error(self, builder: str, error: BaseException) -> None:
        """In the watch's thread: the daemon ended the watch (went away); the retry timer starts another."""
        self._to_loop(self._watch_ended, builder, one_line(error))

    def _watch_ended(self, builder: str, error: str) -> None:
        self._watches.pop(builder, None)
        self._service.records.watching(builder, False)
        self._publish({"type": "error", "builder": builder, "error": error})

    def _to_loop(self, call: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(call, *args)
        except RuntimeError:  # the loop closed with the server
            pass

    # -- archive -------------------------------------------------------------------------------
    async def _check_archive(self) -> None:
        if self._archive_busy:
            return
        generation = self._generation
        self._archive_busy = True
        try:
            archive = await self._service.run(self._service.archive_now)
            mark = _file_marks(archive.path)
            if mark == self._archive_mark:
                return
            self._archive_mark = mark
            items, _ = await self._service.run(archive.list, limit=ARCHIVE_RECENT)
            self.archive_reads += 1
        except ARCHIVE_FAILURES:  # the REST reply says what is wrong with the archive
            return
        finally:
            self._archive_busy = False
        if generation != self._generation:
            return
        seen = {(item["id"], item.get("status")) for item in items}
        if self._archive_seen is not None:
            for item in reversed(items):
                if (item["id"], item.get("status")) not in self._archive_seen:
                    self._publish({"type": "history", "builder": item.get("builder"), "kind": "archived",
                                   "item": archive_summary(item)})
        self._archive_seen = seen


def _file_marks(path: Any) -> tuple:
    """What changes when a kernel writes the archive: the database's and its WAL's size and time."""
    marks = []
    for name in (str(path), f"{path}-wal"):
        try:
            stat = os.stat(name)
            marks.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            marks.append(None)
    return tuple(marks)
