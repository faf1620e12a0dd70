"""FileSend.DiffCopy receiver: the daemon pushes exports to us.

The local exporter speaks fsutil's packet protocol (we are the receiver: we REQuest every regular
file); the tar/OCI/docker exporters stream raw ``BytesMessage`` chunks. Both land in a temporary
path beside the destination and are renamed into place only when the solve succeeded, so a failed
export leaves the previous output untouched. Paths that would escape the destination are refused.
"""

from __future__ import annotations

import os
import shutil
import stat as st
import tempfile
from pathlib import Path
from typing import Iterator, Mapping

import grpc

from envd_jupyter._proto import filesync_pb2, fsutil_pb2
from envd_jupyter.buildkit._session import EXPORTER_ID_METADATA
from envd_jupyter.buildkit._session.localwalk import is_regular, unix_mode
from envd_jupyter.buildkit._session.patterns import clean

DIFFCOPY_PATH = "/moby.filesync.v1.FileSend/DiffCopy"
_P = fsutil_pb2.Packet


class UnsafePathError(ValueError):
    """The daemon sent a path outside the export destination."""


class _Target:
    """Common part of an export destination: a temp path beside ``dest``, promoted on commit."""

    def __init__(self, dest: str | Path):
        self.dest = Path(dest).absolute()
        self.staging: Path | None = None
        self.received = False
        self.error: str | None = None

    def commit(self, ok: bool) -> None:
        """Rename the staged output over ``dest`` when the solve succeeded; otherwise drop it."""
        staging, self.staging = self.staging, None
        if staging is None:
            return
        if ok and self.received and self.error is None:
            self._replace(staging)
        else:
            _remove(staging)

    def _replace(self, staging: Path) -> None:
        old = None
        if self.dest.exists() or self.dest.is_symlink():
            old = self.dest.with_name(f".{self.dest.name}.old-{os.getpid()}-{id(self)}")
            os.rename(self.dest, old)
        os.rename(staging, self.dest)
        if old is not None:
            _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class DirTarget(_Target):
    """Local exporter output directory."""

    def receive(self, requests, context) -> Iterator[bytes]:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.export-", dir=self.dest.parent))
        receiver = TreeReceiver(self.staging, on_complete=self._mark_received)
        try:
            yield from receiver.run(requests)
        except (OSError, ValueError) as exc:
            self.error = str(exc)
            yield _P(type=_P.PACKET_ERR, data=self.error.encode()).SerializeToString()


    def _mark_received(self) -> None:
        # Called before our FIN goes out: the daemon may finish the solve right after reading it,
        # before this handler regains control, so completion cannot wait for the stream's end.
        self.received = True


class FileTarget(_Target):
    """Tar/OCI/docker exporter output file."""

    def receive(self, requests, context) -> Iterator[bytes]:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.dest.name}.export-", dir=self.dest.parent)
        self.staging = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                for raw in requests:
                    out.write(filesync_pb2.BytesMessage.FromString(raw).data)
            os.chmod(name, 0o644)
        except OSError as exc:
            self.error = f"writing {self.dest}: {exc}"
            context.abort(grpc.StatusCode.INTERNAL, self.error)
        self.received = True
        return iter(())


class TreeReceiver:
    """fsutil receiver writing under ``root``; refuses unclean, absolute, ``..`` and symlinked-parent paths."""

    def __init__(self, root: Path, on_complete=None):
        self.root = str(root)
        self.on_complete = on_complete
        self.dirs: set[str] = {""}
        self.known: set[str] = set()
        self.last_in_dir: dict[str, str] = {}
        self.pending: dict[int, tuple[str, fsutil_pb2.Stat]] = {}
        self.open_files: dict[int, object] = {}
        self.dir_times: list[tuple[str, fsutil_pb2.Stat]] = []
        self.finished = False

    def run(self, requests) -> Iterator[bytes]:
        index, stats_done = 0, False
        for raw in requests:
            packet = _P.FromString(raw)
            if packet.type == _P.PACKET_STAT and not stats_done:
                if not packet.HasField("stat"):
                    stats_done = True
                else:
                    if self._add(index, packet.stat):
                        yield _P(type=_P.PACKET_REQ, ID=index).SerializeToString()
                    index += 1
            elif packet.type == _P.PACKET_DATA:
                self._data(packet.ID, packet.data)
            elif packet.type == _P.PACKET_ERR:
                raise OSError(f"error from sender: {packet.data.decode(errors='replace')}")
            elif packet.type == _P.PACKET_FIN:
                break
            if stats_done and not self.pending and not self.finished:
                self._finish_dirs()
                self.finished = True
                if self.on_complete is not None:
                    self.on_complete()
                yield _P(type=_P.PACKET_FIN).SerializeToString()

    def _check(self, path: str) -> tuple[str, str]:
        if not path or path != clean(path) or path.startswith("/") or path == ".." or path.startswith("../"):
            raise UnsafePathError(f"refusing export path {path!r}: not a clean relative path")
        parent, _, base = path.rpartition("/")
        if parent not in self.dirs:
            raise UnsafePathError(f"refusing export path {path!r}: parent is not a directory sent before it")
        if path in self.known or self.last_in_dir.get(parent, "") >= base:
            raise UnsafePathError(f"refusing export path {path!r}: out of order or repeated")
        self.last_in_dir[parent] = base
        self.known.add(path)
        return parent, base

    def _add(self, index: int, stat: fsutil_pb2.Stat) -> bool:
        """Create one entry; True when its content must be requested."""
        self._check(stat.path)
        full = os.path.join(self.root, stat.path)
        mode = unix_mode(stat.mode)
        if st.S_ISDIR(mode):
            os.mkdir(full, 0o700)
            self.dirs.add(stat.path)
            self.dir_times.append((full, stat))
            return False
        if st.S_ISLNK(mode):
            os.symlink(stat.linkname, full)
            os.utime(full, ns=(stat.modTime, stat.modTime), follow_symlinks=False)
            return False
        if is_regular(stat.mode) and stat.linkname:
            source = clean(stat.linkname)
            if source not in self.known or source in self.dirs:
                raise UnsafePathError(f"refusing hardlink {stat.path!r} to {stat.linkname!r}: not an earlier file")
            os.link(os.path.join(self.root, source), full, follow_symlinks=False)
            return False
        if is_regular(stat.mode):
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            self.open_files[index] = os.fdopen(fd, "wb")
            self.pending[index] = (full, stat)
            return True
        if os.geteuid() == 0 and (st.S_ISCHR(mode) or st.S_ISBLK(mode) or st.S_ISFIFO(mode)):
            os.mknod(full, mode, os.makedev(stat.devmajor, stat.devminor))
            _apply_meta(full, stat)
        return False

    def _data(self, file_id: int, data: bytes) -> None:
        handle = self.open_files.get(file_id)
        if handle is None:
            raise ValueError(f"data for unrequested file id {file_id}")
        if data:
            handle.write(data)
            return
        handle.close()
        del self.open_files[file_id]
        full, stat = self.pending.pop(file_id)
        _apply_meta(full, stat)

    def _finish_dirs(self) -> None:
        for full, stat in reversed(self.dir_times):
            _apply_meta(full, stat)


def _apply_meta(full: str, stat: fsutil_pb2.Stat) -> None:
    os.chmod(full, unix_mode(stat.mode) & 0o7777)
    os.utime(full, ns=(stat.modTime, stat.modTime))


class FileSendService:
    """Session service routing each exporter's stream (by exporter id) to its target."""

    method_paths = (DIFFCOPY_PATH,)

    def __init__(self, targets: Mapping[int, DirTarget | FileTarget]):
        self.targets = dict(targets)

    def merge(self, other: "FileSendService") -> "FileSendService":
        """One receiver serves every file export of a solve (routed by exporter id)."""
        return FileSendService({**self.targets, **other.targets})

    def add_to_server(self, server: grpc.Server) -> None:
        handler = grpc.stream_stream_rpc_method_handler(self._diffcopy)  # raw bytes: payload type depends on target
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("moby.filesync.v1.FileSend", {"DiffCopy": handler}),)
        )

    def _target(self, context):
        wanted = dict(context.invocation_metadata()).get(EXPORTER_ID_METADATA)
        if wanted is not None and wanted.isdigit() and int(wanted) in self.targets:
            return self.targets[int(wanted)]
        if len(self.targets) == 1:  # old daemons send no id; one target is unambiguous
            return next(iter(self.targets.values()))
        context.abort(grpc.StatusCode.NOT_FOUND, f"exporter {wanted} not found in this session")

    def _diffcopy(self, requests, context) -> Iterator[bytes]:
        yield from self._target(context).receive(requests, context)
