"""``RecordCache``: each daemon's build history as last listed, so paging the panel's list is not a listing.

The daemons here ignore a listing's limit and filters: every page would stream the whole history
(thousands of records, most of a second). A listing is kept for ``EnvdServer.listing_ttl`` seconds,
and for as long as a watch of that daemon runs (a panel is open) its events keep the copy current, so
it is listed once per watch. ``merged_history`` reads the copy through ``CachedBuilder``.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class RecordCache:
    def __init__(self, ttl: float):
        self._ttl = ttl
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}  # builder -> ref -> HistoryRecord
        self._listed_at: dict[str, float] = {}
        self._watched: set[str] = set()  # builders whose copy a running watch keeps current
        self._epoch: dict[str, int] = {}  # bumped when a watch starts or ends: a listing begun before is not kept

    def records(self, builder: str, list_all: Any) -> list[Any]:
        """The builder's records, newest first; ``list_all()`` (blocking) when the copy is stale."""
        with self._lock:
            fresh = builder in self._records and (
                builder in self._watched or time.monotonic() - self._listed_at[builder] < self._ttl)
            if fresh:
                return _newest_first(self._records[builder].values())
            epoch = self._epoch.get(builder, 0)
        listed = list_all()
        with self._lock:
            if self._epoch.get(builder, 0) == epoch:
                self._records[builder] = {record.ref: record for record in listed}
                self._listed_at[builder] = time.monotonic()
        return _newest_first(listed)

    def watching(self, builder: str, active: bool) -> None:
        """A watch started (the next listing becomes the copy it keeps current) or ended (the TTL rules)."""
        with self._lock:
            self._forget(builder)  # listed again after the watch started: no event falls between
            if active:
                self._watched.add(builder)
            else:
                self._watched.discard(builder)

    def forget(self, builder: str) -> None:
        """The builder's history was changed here (pin, delete): the next page lists it again."""
        with self._lock:
            self._forget(builder)

    def _forget(self, builder: str) -> None:
        self._records.pop(builder, None)
        self._epoch[builder] = self._epoch.get(builder, 0) + 1  # a listing begun before is not kept either

    def apply(self, builder: str, kind: str, record: Any) -> None:
        """One watch event on the copy (none kept: nothing to do, the next listing has it)."""
        with self._lock:
            known = self._records.get(builder)
            if known is None:
                return
            if kind == "deleted":
                known.pop(record.ref, None)
            else:
                known[record.ref] = record


def _newest_first(records: Any) -> list[Any]:
    return sorted(records, key=lambda record: (record.created or 0.0, record.ref), reverse=True)


class CachedBuilder:
    """One builder as ``history.merged_history`` asks it (``.address``, ``.history()``): from the cache,
    connecting at the first listing, so a daemon that went away is one of the merge's ``errors``."""

    def __init__(self, fleet: Any, name: str, cache: RecordCache):
        self._fleet, self._name, self._cache = fleet, name, cache
        self.address = fleet.address(name)

    def history(self) -> list[Any]:
        return self._cache.records(self._name, lambda: self._fleet.client(self._name).history())
