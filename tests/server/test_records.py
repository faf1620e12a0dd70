"""The daemons' listings kept between pages (pure): fresh for the TTL, current through watch events while
a watch runs, and never a listing that began before a watch started."""

from __future__ import annotations

from collections import namedtuple

from envd_jupyter.server._records import RecordCache

Record = namedtuple("Record", "ref created")


class Daemon:
    def __init__(self, *records):
        self.records = list(records)
        self.listings = 0

    def list_all(self):
        self.listings += 1
        return list(self.records)


def test_a_listing_serves_the_pages_within_the_ttl_and_is_listed_again_after():
    daemon = Daemon(Record("a", 1.0), Record("b", 2.0))
    cache = RecordCache(ttl=3600)
    assert [r.ref for r in cache.records("current", daemon.list_all)] == ["b", "a"]
    daemon.records.append(Record("c", 3.0))
    assert [r.ref for r in cache.records("current", daemon.list_all)] == ["b", "a"] and daemon.listings == 1
    stale = RecordCache(ttl=0)
    stale.records("current", daemon.list_all)
    assert [r.ref for r in stale.records("current", daemon.list_all)] == ["c", "b", "a"] and daemon.listings == 3


def test_while_watched_the_events_keep_the_copy_current_without_listing_again():
    daemon = Daemon(Record("a", 1.0))
    cache = RecordCache(ttl=0)
    cache.watching("current", True)
    cache.records("current", daemon.list_all)
    cache.apply("current", "started", Record("b", 2.0))
    cache.apply("current", "completed", Record("b", 2.0))
    cache.apply("current", "deleted", Record("a", 1.0))
    assert [r.ref for r in cache.records("current", daemon.list_all)] == ["b"] and daemon.listings == 1
    cache.watching("current", False)  # the watch ended: listed again, then the TTL rules
    assert [r.ref for r in cache.records("current", daemon.list_all)] == ["a"] and daemon.listings == 2


def test_a_listing_begun_before_a_watch_started_is_not_kept():
    cache = RecordCache(ttl=3600)
    late = Daemon(Record("a", 1.0))

    def listing_during_which_a_watch_starts():
        cache.watching("current", True)
        return late.list_all()

    cache.records("current", listing_during_which_a_watch_starts)
    cache.records("current", late.list_all)
    assert late.listings == 2  # the first listing may have missed events the watch did not apply


def test_events_without_a_copy_are_dropped():
    cache = RecordCache(ttl=3600)
    cache.apply("current", "completed", Record("a", 1.0))
    daemon = Daemon(Record("b", 2.0))
    assert [r.ref for r in cache.records("current", daemon.list_all)] == ["b"]


def test_a_change_made_here_drops_the_copy():
    daemon = Daemon(Record("a", 1.0), Record("b", 2.0))
    cache = RecordCache(ttl=3600)
    cache.records("current", daemon.list_all)
    daemon.records.pop()
    cache.forget("current")  # after a delete through the server
    assert [r.ref for r in cache.records("current", daemon.list_all)] == ["a"] and daemon.listings == 2
