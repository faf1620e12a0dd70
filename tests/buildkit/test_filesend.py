"""Export receiver: hostile packets are refused (unit), real local/tar exports land atomically."""

from __future__ import annotations

import pytest

from envd_jupyter._proto import fsutil_pb2
from envd_jupyter.buildkit.session.filesend import TreeReceiver, UnsafePathError
from envd_jupyter.buildkit.session.localwalk import GO_MODE_DIR, GO_MODE_SYMLINK

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
