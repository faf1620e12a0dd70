"""Export receiver: hostile packets are refused (unit), real local/tar exports land atomically."""

from __future__ import annotations

import pytest

from envd_jupyter._proto import fsutil_pb2
from envd_jupyter.buildkit._session.filesend import TreeReceiver, UnsafePathError
from envd_jupyter.buildkit._session.localwalk import GO_MODE_DIR, GO_MODE_SYMLINK

P = fsutil_pb2.Packet


def _stat(path, mode=0o644, **fields):
    return P(type=P.PACKET_STAT, stat=fsutil_pb2.Stat(path=path, mode=mode, **fields)).SerializeToString()


def _feed(root, packets):
    return list(TreeReceiver(root).run(iter(packets)))


HOSTILE = {
    "dotdot": [_stat("../evil")],
    "absolute": [_stat("/tmp/evil")],
    "unclean": [_stat("a/../../evil")],
    "symlinked parent": [_stat("a", GO_MODE_SYMLINK | 0o777, linkname="/tmp"), _stat("a/evil")],
    "missing parent": [_stat("nodir/evil")],
    "hardlink outside": [_stat("evil", linkname="../../etc/passwd")],
    "repeated": [_stat("x"), _stat("x")],
    "out of order": [_stat("b"), _stat("a")],
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_paths_are_refused(tmp_path, case):
    root = tmp_path / "staging"
    root.mkdir()
    with pytest.raises(UnsafePathError):
        _feed(root, HOSTILE[case])
    assert not (tmp_path / "evil").exists()
    assert not any(p.name == "evil" for p in tmp_path.rglob("*"))


def test_receiver_requests_files_and_writes_them(tmp_path):
    packets = [
        _stat("d", GO_MODE_DIR | 0o755),
        _stat("d/f", 0o600, size=5, modTime=1_000_000_000),
        _stat("d/h", 0o600, linkname="d/f"),
        _stat("l", GO_MODE_SYMLINK | 0o777, linkname="d/f"),
        P(type=P.PACKET_STAT).SerializeToString(),
        P(type=P.PACKET_DATA, ID=1, data=b"hello").SerializeToString(),
        P(type=P.PACKET_DATA, ID=1).SerializeToString(),
    ]
    answers = [P.FromString(raw) for raw in _feed(tmp_path, packets)]
    assert [(a.type, a.ID) for a in answers] == [(P.PACKET_REQ, 1), (P.PACKET_FIN, 0)]
    assert (tmp_path / "d/f").read_bytes() == b"hello"
    assert (tmp_path / "d/f").stat().st_mtime_ns == 1_000_000_000
    assert (tmp_path / "d/h").stat().st_ino == (tmp_path / "d/f").stat().st_ino
    assert (tmp_path / "l").readlink().as_posix() == "d/f"


# -- real exports -------------------------------------------------------------------------------

import subprocess  # noqa: E402
import tarfile  # noqa: E402

import os  # noqa: E402

from envd_jupyter.buildkit import ExportError, LocalDir, SolveError, Tarball  # noqa: E402
from envd_jupyter.buildkit._session.filesend import EXPORT_MARK  # noqa: E402
from envd_jupyter.llb._source import image, scratch  # noqa: E402


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if ".export-" in p.name or ".old-" in p.name)


def test_local_export_replaces_only_what_an_export_wrote(any_client, tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "stale.txt").write_text("old")
    state = scratch().mkdir("/d", 0o750).mkfile("/d/new.txt", b"fresh", 0o640)
    with pytest.raises(ExportError, match="a non-empty directory no earlier export wrote"):
        any_client.solve(state, exports=[LocalDir(dest)])  # refused before the solve
    assert (dest / "stale.txt").read_text() == "old"
    export = LocalDir(dest, overwrite=True)
    any_client.solve(state, exports=[export])
    assert export.ok is True
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["d", "d/new.txt"]
    assert (dest / "d/new.txt").read_bytes() == b"fresh"
    assert (dest / "d/new.txt").stat().st_mode & 0o777 == 0o640
    again = LocalDir(dest)  # written by an export now: replaced without overwrite
    any_client.solve(scratch().mkfile("/second.txt", b"2"), exports=[again])
    assert sorted(p.name for p in dest.iterdir()) == ["second.txt"]
    assert _leftovers(tmp_path) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, so an export that needs more fails mid-stream (a real ENOSPC)."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_failed_local_export_leaves_the_old_directory(any_client, busybox, network, small_disk):
    dest = small_disk / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("previous export")
    os.setxattr(dest, EXPORT_MARK, b"local")  # as an earlier export left it
    big = image(busybox).run("head -c 3000000 /dev/zero > /big && echo small > /small", network=network)
    state = scratch().copy(big, "/small", "/small").copy(big, "/big", "/big")
    export = LocalDir(dest)
    with pytest.raises(SolveError) as failure:
        any_client.solve(state, exports=[export])
    # Our receiver's ENOSPC reaches the user, or (BuildKit 0.8, racing our error packet) the export step's EOF.
    assert "No space left" in str(failure.value) or "exporting" in str(failure.value)
    assert export.ok is False
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]
    assert (dest / "keep.txt").read_text() == "previous export"
    assert _leftovers(small_disk) == []


def test_tar_export(any_client, tmp_path):
    path = tmp_path / "rootfs.tar"
    path.write_bytes(b"previous")
    state = scratch().mkfile("/hello.txt", b"hello tar")
    any_client.solve(state, exports=[Tarball(path)])
    with tarfile.open(path) as archive:
        assert archive.extractfile("hello.txt").read() == b"hello tar"
    assert _leftovers(tmp_path) == []


def test_oci_archive_export(docker_current, client_for, tmp_path):
    path = tmp_path / "image.oci.tar"
    client_for(docker_current).solve(scratch().mkfile("/x", b"x"), exports=[Tarball(path, format="oci")])
    with tarfile.open(path) as archive:
        names = archive.getnames()
    assert "index.json" in names and "oci-layout" in names
