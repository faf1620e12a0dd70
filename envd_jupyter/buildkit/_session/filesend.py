"""FileSend.DiffCopy receiver: the daemon pushes exports to us.

The local exporter speaks fsutil's packet protocol (we are the receiver: we REQuest every regular
file); the tar/OCI/docker exporters stream raw ``BytesMessage`` chunks. Both land in a temporary
path beside the destination and are swapped into place only when the solve succeeded, so a failed
export leaves the previous output untouched. Paths that would escape the destination are refused.

An export never destroys what it did not write: a directory export refuses a non-empty directory
that no earlier export of ours wrote (``overwrite=True`` opts in) and never replaces ``/``, the
home directory or the current directory (or a parent of it); a file export never replaces a
directory. The swap is one ``renameat2(RENAME_EXCHANGE)``, so there is no moment without the
destination; where a filesystem lacks it, two renames whose failure puts the old tree back.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat as st
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Mapping

import grpc

from envd_jupyter._proto import filesync_pb2, fsutil_pb2
from envd_jupyter.buildkit._errors import ExportError
from envd_jupyter.buildkit._session import EXPORTER_ID_METADATA
from envd_jupyter.buildkit._session.localwalk import is_regular, unix_mode
from envd_jupyter.buildkit._session.patterns import clean

DIFFCOPY_PATH = "/moby.filesync.v1.FileSend/DiffCopy"
EXPORT_MARK = "user.envd-jupyter.export"  # extended attribute on a directory one of our exports wrote
_MARK_VALUE = b"local"
_P = fsutil_pb2.Packet
_AT_FDCWD, _RENAME_NOREPLACE, _RENAME_EXCHANGE = -100, 1, 2
_SETID_BITS = st.S_ISUID | st.S_ISGID


class UnsafePathError(ValueError):
    """The daemon sent a path outside the export destination."""


class _Target:
    """Common part of an export destination: a temp path beside ``dest``, swapped in on commit.

    ``check()`` says (ExportError) whether ``dest`` may be replaced; it runs before the solve and
    again at commit. One stream per export: a second one, or one after the commit, is refused.
    """

    kind = "export"

    def __init__(self, dest: str | Path):
        self.dest = Path(dest).absolute()
        self.staging: Path | None = None
        self.received = False
        self.error: str | None = None
        self._lock = threading.Lock()
        self._ended = False

    def check(self) -> None:
        raise NotImplementedError

    def _begin(self, make_staging, context) -> Path:
        """The staging path for the one stream this export takes (any other is refused to the daemon)."""
        with self._lock:
            if self._ended:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"{self.kind} to {self.dest}: a stream arrived after the solve ended")
            if self.staging is not None or self.received:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"{self.kind} to {self.dest}: the daemon opened a second stream for one export")
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            self.staging = make_staging()
            return self.staging

    def commit(self, ok: bool) -> None:
        """Swap the staged output in when the solve succeeded; otherwise drop it. Raises ExportError when
        a successful solve's output cannot be had (nothing received, a receive error, ``dest`` refused)."""
        with self._lock:
            self._ended = True
            staging, self.staging = self.staging, None
        try:
            if not ok:
                return
            if self.error is not None:
                raise ExportError(f"{self.kind} to {self.dest} failed: {self.error}")
            if staging is None or not self.received:
                raise ExportError(f"{self.kind} to {self.dest}: the daemon sent nothing")
            self.check()
            self._prepare(staging)
            swap_into_place(staging, self.dest)  # staging now holds the old tree, if there was one
        finally:
            if staging is not None and os.path.lexists(staging):
                _remove(staging)

    def _prepare(self, staging: Path) -> None:
        """Last touches on the staged output before it goes in place."""


def swap_into_place(staging: Path, dest: Path) -> None:
    """Put ``staging`` at ``dest``; afterwards ``staging`` holds the old ``dest`` (if there was one).

    Atomic where the filesystem has RENAME_EXCHANGE; otherwise two renames, the first undone when
    the second fails, so ``dest`` is never lost.
    """
    if not os.path.lexists(dest):
        result = _renameat2(staging, dest, _RENAME_NOREPLACE)
        if result in _UNSUPPORTED:
            os.rename(staging, dest)
            return
        if result != errno.EEXIST:  # EEXIST: it appeared meanwhile, so exchange below
            _raise_unless_ok(result, dest)
            return
    result = _renameat2(staging, dest, _RENAME_EXCHANGE)
    if result not in _UNSUPPORTED:
        _raise_unless_ok(result, dest)
        return
    aside = staging.with_name(staging.name + ".old")
    os.rename(dest, aside)
    try:
        os.rename(staging, dest)
    except BaseException:
        os.rename(aside, dest)
        raise
    os.rename(aside, staging)


_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)


def _raise_unless_ok(result: int, dest: Path) -> None:
    if result:
        raise OSError(result, os.strerror(result), str(dest))


def _renameat2(source: Path, target: Path, flags: int) -> int:
    """0 on success, the errno on failure; ENOSYS when the C library has no renameat2."""
    function = getattr(_LIBC, "renameat2", None)
    if function is None:
        return errno.ENOSYS
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return 0
    return ctypes.get_errno()


_LIBC = ctypes.CDLL(None, use_errno=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _protected(dest: Path) -> str:
    """Why ``dest`` may never be replaced by an export ("" when it may)."""
    resolved = dest.resolve()
    if resolved == Path(resolved.anchor):
        return "the filesystem root"
    if resolved == Path.home().resolve():
        return "your home directory"
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        return "the current directory or one of its parents"
    return ""


def _marked(path: Path) -> bool:
    try:
        return os.getxattr(path, EXPORT_MARK, follow_symlinks=False) == _MARK_VALUE
    except OSError:
        return False


class DirTarget(_Target):
    """Local exporter output directory; ``devices``/``setid`` keep device nodes and set-id bits (off by default)."""

    kind = "local export"

    def __init__(self, dest: str | Path, *, overwrite: bool = False, devices: bool = False, setid: bool = False):
        super().__init__(dest)
        self.overwrite, self.devices, self.setid = overwrite, devices, setid

    def check(self) -> None:
        refuse = f"refusing to export into {self.dest}"
        protected = _protected(self.dest)
        if protected:
            raise ExportError(f"{refuse}: it is {protected}; export into a subdirectory")
        if self.overwrite or not os.path.lexists(self.dest):
            return
        if self.dest.is_symlink() or not self.dest.is_dir():
            raise ExportError(f"{refuse}: it exists and is not a directory (pass overwrite=True to replace it)")
        if not _marked(self.dest) and any(os.scandir(self.dest)):
            raise ExportError(f"{refuse}: a non-empty directory no earlier export wrote "
                              "(pass overwrite=True to replace it)")

    def receive(self, requests, context) -> Iterator[bytes]:
        staging = self._begin(lambda: Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.export-",
                                                            dir=self.dest.parent)), context)
        receiver = TreeReceiver(staging, on_complete=self._mark_received, devices=self.devices, setid=self.setid)
        try:
            yield from receiver.run(requests)
        except (OSError, ValueError) as exc:
            self.error = str(exc)
            yield _P(type=_P.PACKET_ERR, data=self.error.encode()).SerializeToString()

    def _mark_received(self) -> None:
        # Called before our FIN goes out: the daemon may finish the solve right after reading it,
        # before this handler regains control, so completion cannot wait for the stream's end.
        self.received = True

    def _prepare(self, staging: Path) -> None:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp made it 0700; a new directory gets the usual mode
        try:
            os.setxattr(staging, EXPORT_MARK, _MARK_VALUE, follow_symlinks=False)
        except OSError:
            pass  # a filesystem without user xattrs: the next export here needs overwrite=True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class FileTarget(_Target):
    """Tar/OCI/docker exporter output file; replaces a file or symlink at ``dest``, never a directory."""

    kind = "file export"

    def check(self) -> None:
        if self.dest.is_dir() and not self.dest.is_symlink():
            raise ExportError(f"refusing to write {self.dest}: it is a directory; name a file")

    def receive(self, requests, context) -> Iterator[bytes]:
        fd_box = []

        def make() -> Path:
            fd, name = tempfile.mkstemp(prefix=f".{self.dest.name}.export-", dir=self.dest.parent)
            fd_box.append(fd)
            return Path(name)

        staging = self._begin(make, context)
        try:
            with os.fdopen(fd_box[0], "wb") as out:
                for raw in requests:
                    out.write(filesync_pb2.BytesMessage.FromString(raw).data)
            os.chmod(staging, 0o644)
        except OSError as exc:
            self.error = f"writing {self.dest}: {exc.strerror or exc}"
            context.abort(grpc.StatusCode.INTERNAL, self.error)
        self.received = True
        return iter(())


class TreeReceiver:
    """fsutil receiver writing under ``root``; refuses unclean, absolute, ``..`` and symlinked-parent paths.

    Device nodes and FIFOs are skipped and set-id bits cleared unless ``devices``/``setid`` ask for them.
    """

    def __init__(self, root: Path, on_complete=None, *, devices: bool = False, setid: bool = False):
        self.root = str(root)
        self.on_complete = on_complete
        self.devices = devices
        self.mode_mask = 0o7777 if setid else 0o7777 & ~_SETID_BITS
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
        if self.devices and os.geteuid() == 0 and (st.S_ISCHR(mode) or st.S_ISBLK(mode) or st.S_ISFIFO(mode)):
            os.mknod(full, mode & ~_SETID_BITS, os.makedev(stat.devmajor, stat.devminor))
            self._apply_meta(full, stat)
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
        self._apply_meta(full, stat)

    def _finish_dirs(self) -> None:
        for full, stat in reversed(self.dir_times):
            self._apply_meta(full, stat)

    def _apply_meta(self, full: str, stat: fsutil_pb2.Stat) -> None:
        os.chmod(full, unix_mode(stat.mode) & self.mode_mask)
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
