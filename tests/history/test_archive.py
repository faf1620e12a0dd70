"""The build archive on its own: storage, filters, bounds, schema, restarts and several writing processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pytest

from envd_jupyter.history import SCHEMA_VERSION, Archive, ArchiveError, default_path


def entry(i: int, **extra) -> dict:
    return {"id": f"ref{i:04d}", "builder": "local", "address": "docker+unix:///x.sock", "notebook": "a.ipynb",
            "cell_id": f"cell-{i}", "state": f"state{i}", "name": f"a.ipynb: state{i}", "created": 1000.0 + i,
            "completed": 1001.0 + i, "status": "ok", "error": "", "total": 3, "cached": 1, "ran": 2,
            "steps": [{"digest": f"sha256:{i}", "name": "run"}], "graph": {"nodes": [], "edges": []},
            "scheduling": [{"profile": "default"}], **extra}


def test_an_entry_comes_back_whole_and_lists_as_a_summary(tmp_path):
    archive = Archive(tmp_path / "h.sqlite3")
    archive.add(entry(1))
    full = archive.get("ref0001")
    assert full["state"] == "state1" and full["steps"] == [{"digest": "sha256:1", "name": "run"}]
    assert full["graph"] == {"nodes": [], "edges": []} and full["scheduling"] == [{"profile": "default"}]
    items, total = archive.list()
    assert total == 1 and "steps" not in items[0] and "graph" not in items[0]
    assert items[0]["pinned"] is False and items[0]["ran"] == 2
    assert archive.get("nope") is None


def test_only_known_keys_are_stored(tmp_path):
    archive = Archive(tmp_path / "h.sqlite3")
    archive.add(entry(1, password="hunter2-do-not-store"))
    archive.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"hunter2-do-not-store" not in stored and b"state1" in stored


def test_filters_and_paging_newest_first(tmp_path):
    archive = Archive(tmp_path / "h.sqlite3")
    for i in range(10):
        archive.add(entry(i, status="failed" if i % 3 == 0 else "ok", builder="gpu" if i < 5 else "local"))
    items, total = archive.list(limit=3, offset=2)
    assert total == 10 and [i["id"] for i in items] == ["ref0007", "ref0006", "ref0005"]
    failed, n_failed = archive.list(status="failed")
    assert n_failed == 4 and {i["id"] for i in failed} == {"ref0000", "ref0003", "ref0006", "ref0009"}
    assert archive.list(builder="gpu", status="failed")[1] == 2
    assert [i["id"] for i in archive.list(name="state7")[0]] == ["ref0007"]
    assert archive.list(name="%")[1] == 0  # LIKE wildcards in a name are literal


def test_bounded_by_records_oldest_unpinned_first(tmp_path):
    archive = Archive(tmp_path / "h.sqlite3", max_records=5)
    archive.add(entry(0))
    assert archive.pin("ref0000") is True
    for i in range(1, 9):
        archive.add(entry(i))
    ids = {i["id"] for i in archive.list(limit=None)[0]}
    assert ids == {"ref0000", "ref0005", "ref0006", "ref0007", "ref0008"}
    assert archive.pin("missing") is False


def test_bounded_by_bytes(tmp_path):
    archive = Archive(tmp_path / "h.sqlite3", max_bytes=40_000)
    for i in range(20):
        archive.add(entry(i, steps=[{"name": "x" * 5_000}]))
    items, total = archive.list(limit=None)
    assert 2 <= total < 20 and items[0]["id"] == "ref0019"


def test_a_huge_entry_loses_its_graph_not_its_summary(tmp_path, monkeypatch):
    from envd_jupyter.history import _archive

    monkeypatch.setattr(_archive, "MAX_ENTRY_BYTES", 10_000)
    archive = Archive(tmp_path / "h.sqlite3")
    archive.add(entry(1, graph={"nodes": ["n" * 20_000]}))
    full = archive.get("ref0001")
    assert full["graph"] is None and full["truncated"] is True and full["steps"]


def test_survives_a_restart_in_wal_mode_with_its_schema_version(tmp_path):
    path = tmp_path / "deep" / "h.sqlite3"
    with Archive(path) as archive:
        archive.add(entry(1))
        archive.pin("ref0001")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with Archive(path) as again:
        assert again.get("ref0001")["pinned"] is True
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_a_newer_schema_is_refused_in_one_line(tmp_path):
    path = tmp_path / "h.sqlite3"
    Archive(path).add(entry(1))
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(ArchiveError, match="newer than") as failure:
        Archive(path).list()
    assert "\n" not in str(failure.value)


def test_an_entry_needs_an_id(tmp_path):
    with pytest.raises(ArchiveError, match="needs an id"):
        Archive(tmp_path / "h.sqlite3").add({"state": "x"})


def test_the_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ENVD_JUPYTER_HISTORY", str(tmp_path / "mine.sqlite3"))
    assert default_path() == tmp_path / "mine.sqlite3"
    monkeypatch.delenv("ENVD_JUPYTER_HISTORY")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "envd-jupyter" / "history.sqlite3"


def _write_many(path: str, worker: int, count: int) -> None:
    archive = Archive(path, busy_timeout=30)
    for i in range(count):
        archive.add(entry(worker * 1000 + i, steps=[{"name": "s" * 2_000}]))
    archive.close()


def test_two_processes_write_while_a_reader_reads(tmp_path):
    path = str(tmp_path / "h.sqlite3")
    Archive(path).list()  # created (and migrated) once, so the writers race only on rows
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(path, worker, 60)) for worker in (1, 2)]
    for process in writers:
        process.start()
    reader = Archive(path)
    seen = []
    while any(p.is_alive() for p in writers) and len(seen) < 10_000:
        seen.append(reader.list(limit=5)[1])
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0
    assert seen == sorted(seen)  # a reader sees committed rows only, never fewer than before
    assert reader.list()[1] == 120


def test_a_writer_waits_out_another_process_lock_up_to_its_busy_timeout(tmp_path):
    path = tmp_path / "h.sqlite3"
    Archive(path).add(entry(1))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # what another kernel's write looks like from here
    impatient = Archive(path, busy_timeout=0.05)
    with pytest.raises(ArchiveError, match="locked") as failure:
        impatient.add(entry(2))
    assert "\n" not in str(failure.value)
    release = threading.Timer(0.3, holder.execute, args=("COMMIT",))
    release.start()
    patient = Archive(path)
    patient.add(entry(3))  # blocks until the holder commits, then succeeds
    release.join()
    assert {i["id"] for i in patient.list()[0]} == {"ref0001", "ref0003"}


def daemon_record(i: int, status: str = "ok"):
    from envd_jupyter.buildkit import HistoryRecord

    return HistoryRecord(ref=f"d{i:04d}", name="Dockerfile", frontend="dockerfile.v0", created=2000.0 + i,
                         completed=2001.0 + i, error="", steps_total=4, steps_cached=1, steps_completed=4,
                         exporter_response={}, pinned=False, status=status)


def test_remembered_daemon_copies_give_way_before_kernel_entries(tmp_path):
    archive = Archive(tmp_path / "h.sqlite3", max_records=5)
    archive.add(entry(1))
    archive.add(entry(2))
    archive.remember("local", "docker+unix:///x.sock", [daemon_record(i) for i in range(10)]
                     + [daemon_record(99, status="running")])
    items, total = archive.list(limit=None)
    assert total == 5 and {i["id"] for i in items} == {"ref0001", "ref0002", "d0007", "d0008", "d0009"}
    copy = archive.get("d0009")
    assert copy["origin"] == "daemon" and (copy["total"], copy["cached"], copy["ran"]) == (4, 1, 3)
    assert copy["steps"] is None and copy["graph"] is None


def test_remembering_never_overwrites_what_a_kernel_wrote(tmp_path):
    archive = Archive(tmp_path / "h.sqlite3")
    archive.add(entry(1, id="d0001", status="failed", error="exit code 3"))
    archive.remember("local", "docker+unix:///x.sock", [daemon_record(1, status="cancelled")])
    kept = archive.get("d0001")
    assert (kept["status"], kept["error"], kept["state"]) == ("failed", "exit code 3", "state1")
    assert kept["origin"] == "kernel"


def test_changes_since_a_write_number_for_live_updates(tmp_path):
    archive = Archive(tmp_path / "h.sqlite3")
    assert archive.changes() == ([], 0)
    archive.add(entry(1))
    archive.add(entry(2))
    items, cursor = archive.changes()
    assert [i["id"] for i in items] == ["ref0001", "ref0002"] and cursor == 2
    archive.remember("local", "", [daemon_record(5)])  # copies are not news: the daemon told the server
    archive.delete("ref0002")
    archive.add(entry(1, status="failed"))  # rewritten: news again
    items, latest = archive.changes(cursor)
    assert [(i["id"], i["status"]) for i in items] == [("ref0001", "failed")] and latest == 3
    assert archive.changes(latest) == ([], 3)
