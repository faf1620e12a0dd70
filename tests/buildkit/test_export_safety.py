"""Exports never destroy (issue 17 item 4), checked against the real receiver with a fake daemon peer.

A directory export refuses a non-empty directory no earlier export wrote (overwrite=True opts in),
never replaces /, home or the current directory, swaps atomically and restores the old tree on
failure, leaks no staging directory, fails when nothing arrived, and drops device nodes and
set-id bits unless asked for.
"""

from __future__ import annotations

import errno
import os
import stat as st
from pathlib import Path

import grpc
import pytest

from envd_jupyter.buildkit import ExportError, LocalDir, Tarball
from envd_jupyter.buildkit._session import filesend
from envd_jupyter.buildkit._session.filesend import DIFFCOPY_PATH, DirTarget, FileSendService
from envd_jupyter.buildkit._session.localwalk import (GO_MODE_CHAR_DEVICE, GO_MODE_DEVICE, GO_MODE_DIR,
                                                     GO_MODE_SETGID, GO_MODE_SETUID)
from envd_jupyter._proto import filesync_pb2

from hostile import FakeDaemon, data, end_of_stats, stat


def _tree(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in root.rglob("*")}


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".export-" in p.name)


def _send_tree(export, files: dict[str, bytes], extra: list[bytes] = ()) -> list[bytes]:
    """Play the daemon's local exporter: one DiffCopy carrying ``files`` (flat names, sorted)."""
    stats = [stat(name, 0o644, size=len(body)) for name, body in sorted(files.items())]
    payload = [data(i, body) for i, (_, body) in enumerate(sorted(files.items()))]
    ends = [data(i) for i in range(len(files))]
    with FakeDaemon(export.session_services(0)) as daemon:
        return daemon.stream(DIFFCOPY_PATH, [*stats, *extra, end_of_stats(), *payload, *ends])


def _export(path: Path, files: dict[str, bytes], **options) -> LocalDir:
    export = LocalDir(path, **options)
    _send_tree(export, files)
    export.finish(True, {})
    return export


def test_a_users_non_empty_directory_is_refused_before_the_solve(tmp_path):
    dest = tmp_path / "project"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(ExportError) as refused:
        LocalDir(dest).session_services(0)
    assert str(refused.value) == (f"refusing to export into {dest}: a non-empty directory no earlier export "
                                  "wrote (pass overwrite=True to replace it)")
    assert _tree(dest) == {"notes.txt": b"mine"}


def test_overwrite_opts_in_and_a_directory_an_export_wrote_is_replaced_without_it(tmp_path):
    dest = tmp_path / "project"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    _export(dest, {"a": b"first"}, overwrite=True)
    assert _tree(dest) == {"a": b"first"}
    _export(dest, {"b": b"second"})  # ours now: no overwrite needed
    assert _tree(dest) == {"b": b"second"}
    assert os.getxattr(dest, filesend.EXPORT_MARK) == b"local"
    assert _leftovers(tmp_path) == []


def test_an_empty_or_missing_directory_needs_no_overwrite(tmp_path):
    (tmp_path / "empty").mkdir()
    _export(tmp_path / "empty", {"x": b"1"})
    _export(tmp_path / "new" / "deeper", {"y": b"2"})
    assert _tree(tmp_path / "empty") == {"x": b"1"}
    assert _tree(tmp_path / "new" / "deeper") == {"y": b"2"}


@pytest.mark.parametrize("where", ["cwd", "parent of cwd", "home", "root"])
def test_cwd_home_and_root_are_refused_even_with_overwrite(tmp_path, monkeypatch, where):
    work = tmp_path / "home" / "project"
    work.mkdir(parents=True)
    (work / "keep").write_text("k")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(work)
    dest = {"cwd": Path("."), "parent of cwd": Path(".."), "home": Path("~").expanduser(), "root": Path("/")}[where]
    with pytest.raises(ExportError, match="export into a subdirectory"):
        LocalDir(dest, overwrite=True).session_services(0)
    assert (work / "keep").read_text() == "k"


def test_a_file_or_symlink_at_the_destination_needs_overwrite(tmp_path):
    (tmp_path / "file").write_text("f")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "precious").write_text("p")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    for name in ("file", "link"):
        with pytest.raises(ExportError, match="exists and is not a directory"):
            LocalDir(tmp_path / name).session_services(0)
    _export(tmp_path / "link", {"new": b"n"}, overwrite=True)
    assert _tree(tmp_path / "link") == {"new": b"n"}
    assert (tmp_path / "target" / "precious").read_text() == "p"  # the link was replaced, not followed


def test_a_tarball_never_replaces_a_directory(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("k")
    with pytest.raises(ExportError, match="it is a directory"):
        Tarball(tmp_path / "out").session_services(0)
    assert (tmp_path / "out" / "keep").read_text() == "k"


def test_a_failed_swap_restores_the_old_tree(tmp_path, monkeypatch):
    """Where RENAME_EXCHANGE is missing, two renames; the second failing puts the old tree back."""
    dest = tmp_path / "out"
    _export(dest, {"old": b"previous"})
    monkeypatch.setattr(filesend, "_renameat2", lambda *args: errno.EINVAL)
    real_rename, calls = os.rename, []

    def failing_second_rename(source, target):
        calls.append((source, target))
        if len(calls) == 2:
            raise OSError(errno.EIO, "injected")
        real_rename(source, target)

    monkeypatch.setattr(filesend.os, "rename", failing_second_rename)
    export = LocalDir(dest)
    _send_tree(export, {"new": b"next"})
    with pytest.raises(OSError, match="injected"):
        export.finish(True, {})
    assert export.ok is False
    assert _tree(dest) == {"old": b"previous"}
    assert _leftovers(tmp_path) == [] and not [p for p in tmp_path.iterdir() if p.name.endswith(".old")]


def test_the_swap_is_one_exchange(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    _export(dest, {"old": b"previous"})
    flags = []
    real = filesend._renameat2
    monkeypatch.setattr(filesend, "_renameat2", lambda s, t, f: flags.append(f) or real(s, t, f))
    monkeypatch.setattr(filesend.os, "rename", lambda *a: pytest.fail("a rename would leave a moment without dest"))
    _export(dest, {"new": b"next"})
    assert flags == [filesend._RENAME_EXCHANGE]
    assert _tree(dest) == {"new": b"next"}


def test_a_second_stream_is_refused_and_leaks_nothing(tmp_path):
    dest = tmp_path / "out"
    export = LocalDir(dest)
    _send_tree(export, {"a": b"1"})
    with pytest.raises(grpc.RpcError, match="second stream"):
        _send_tree(export, {"b": b"2"})
    export.finish(True, {})
    assert _tree(dest) == {"a": b"1"}
    assert _leftovers(tmp_path) == []


def test_a_failed_solve_drops_the_staging_and_a_late_stream_is_refused(tmp_path):
    dest = tmp_path / "out"
    export = LocalDir(dest)
    _send_tree(export, {"a": b"1"})
    assert len(_leftovers(tmp_path)) == 1  # staged beside the destination
    export.finish(False, {})
    assert _leftovers(tmp_path) == [] and not dest.exists()
    with pytest.raises(grpc.RpcError, match="after the solve ended"):
        _send_tree(export, {"b": b"2"})
    assert _leftovers(tmp_path) == [] and not dest.exists()


@pytest.mark.parametrize("kind", ["dir", "tar"])
def test_an_export_that_received_nothing_is_a_failure(tmp_path, kind):
    export = LocalDir(tmp_path / "out") if kind == "dir" else Tarball(tmp_path / "out.tar")
    export.session_services(0)
    with pytest.raises(ExportError, match="the daemon sent nothing"):
        export.finish(True, {})
    assert export.ok is False


def test_an_interrupted_tar_stream_is_a_failure(tmp_path):
    (tmp_path / "out.tar").write_bytes(b"previous")
    export = Tarball(tmp_path / "out.tar")
    chunks = [filesync_pb2.BytesMessage(data=b"partial").SerializeToString()]
    with FakeDaemon(export.session_services(0)) as daemon:
        with pytest.raises(grpc.RpcError):  # the daemon's side gives up mid-stream
            daemon.stream(DIFFCOPY_PATH, _then_raise(chunks), timeout=5)
    with pytest.raises(ExportError):
        export.finish(True, {})
    assert (tmp_path / "out.tar").read_bytes() == b"previous"
    assert _leftovers(tmp_path) == []


def _then_raise(items):
    yield from items
    raise RuntimeError("the daemon's exporter broke")


def test_set_id_bits_are_dropped_unless_asked_for(tmp_path):
    for setid, expected in ((False, 0o755), (True, 0o6755)):
        dest = tmp_path / f"setid-{setid}"
        export = LocalDir(dest, setid=setid)
        with FakeDaemon(export.session_services(0)) as daemon:
            daemon.stream(DIFFCOPY_PATH, [stat("bin", GO_MODE_DIR | GO_MODE_SETGID | 0o755),
                                          stat("bin/su", GO_MODE_SETUID | GO_MODE_SETGID | 0o755, size=2),
                                          end_of_stats(), data(1, b"su"), data(1)])
        export.finish(True, {})
        assert st.S_IMODE((dest / "bin" / "su").stat().st_mode) == expected
        assert (dest / "bin").stat().st_mode & st.S_ISGID == (st.S_ISGID if setid else 0)


def test_device_nodes_are_dropped_unless_asked_for(tmp_path):
    """Runs as root, like the rest of the suite (only root can make device nodes)."""
    for devices in (False, True):
        dest = tmp_path / f"devices-{devices}"
        export = LocalDir(dest, devices=devices)
        with FakeDaemon(export.session_services(0)) as daemon:
            daemon.stream(DIFFCOPY_PATH, [stat("null", GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE | 0o666,
                                               devmajor=1, devminor=3), end_of_stats()])
        export.finish(True, {})
        assert (dest / "null").exists() is devices
        if devices:
            assert st.S_ISCHR((dest / "null").stat().st_mode)


def test_one_failing_export_neither_stops_the_others_nor_hides_its_error(docker_current, client_for, tmp_path,
                                                                         unique):
    """Every export is told how the solve went; the first export's own failure is what the solve raises."""
    from envd_jupyter.buildkit import Image
    from envd_jupyter.llb._source import scratch

    class BrokenImage(Image):
        def finish(self, ok, exporter_response):
            super().finish(ok, exporter_response)
            raise ExportError("the first export broke")

    broken, local_dir = BrokenImage(f"envd-jupyter-test/broken:{unique}"), LocalDir(tmp_path / "out")
    with pytest.raises(ExportError, match="the first export broke"):
        client_for(docker_current).solve(scratch().mkfile("/x", b"x"), exports=[broken, local_dir])
    assert local_dir.ok is True and (tmp_path / "out" / "x").read_bytes() == b"x"
    assert _leftovers(tmp_path) == []
