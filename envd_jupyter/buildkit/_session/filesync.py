"""FileSync.DiffCopy sender: serves ``local()`` contexts to the daemon over fsutil's packet protocol.

The daemon opens the stream with the directory name and its include/exclude patterns as gRPC
metadata; we send every STAT in fsutil's order, then only the files it REQuests. BuildKit compares
stats with its cached copy and requests only changed files, so a re-upload after touching one file
sends just that file's bytes (``FileSyncService.last_transfer`` records it).
"""

from __future__ import annotations

import collections
import os
import queue
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import grpc

from envd_jupyter._proto import fsutil_pb2
from envd_jupyter.buildkit._session.localwalk import Walker, is_regular
from envd_jupyter.buildkit._session.patterns import read_dockerignore

DIFFCOPY_PATH = "/moby.filesync.v1.FileSync/DiffCopy"
CHUNK = 1 << 20  # well under the 4 MiB gRPC message limit of old daemons
DATA_PER_STAT = CHUNK  # requested bytes sent after each STAT during the walk (128 KiB did alike, 32 KiB worse)
IDLE_POLL = 1.0  # seconds between liveness checks while waiting for the daemon's requests

_STAT, _REQ, _DATA, _FIN, _ERR = (fsutil_pb2.Packet.PACKET_STAT, fsutil_pb2.Packet.PACKET_REQ,
                                  fsutil_pb2.Packet.PACKET_DATA, fsutil_pb2.Packet.PACKET_FIN,
                                  fsutil_pb2.Packet.PACKET_ERR)


@dataclass(frozen=True)
class LocalDir:
    """A directory offered to the daemon; ``excludes`` and ``.dockerignore`` hide files whatever the LLB says."""

    path: str | Path
    excludes: tuple[str, ...] = ()
    dockerignore: bool = True
    transfers: list["TransferStats"] = field(default_factory=list, compare=False, repr=False)

    def client_excludes(self) -> list[str]:
        patterns = read_dockerignore(self.path) if self.dockerignore else []
        return patterns + list(self.excludes)


@dataclass
class TransferStats:
    """What one DiffCopy sent: for checking that BuildKit requested only changed files."""

    dir_name: str = ""
    stats: int = 0
    files_requested: int = 0
    data_bytes: int = 0
    requested_paths: list[str] = field(default_factory=list)


def decode_metadata(pairs) -> dict[str, list[str]]:
    """gRPC metadata → lists per key, undoing BuildKit's ``<key>-encoded`` URL escaping."""
    raw: dict[str, list[str]] = {}
    for key, value in pairs or ():
        raw.setdefault(key, []).append(value if isinstance(value, str) else value.decode())
    decoded = {}
    for key, values in raw.items():
        flag = raw.get(key + "-encoded", ["0"])[0].lower() in ("1", "true")
        decoded[key] = [urllib.parse.unquote_plus(v) for v in values] if flag else values
    return decoded


class FileSyncService:
    """Session service for ``local()`` sources; ``dirs`` maps the LLB local name to a directory."""

    method_paths = (DIFFCOPY_PATH,)

    def __init__(self, dirs: Mapping[str, str | Path | LocalDir]):
        self.dirs = {name: d if isinstance(d, LocalDir) else LocalDir(d) for name, d in dirs.items()}
        self.transfers: list[TransferStats] = []
        self._lock = threading.Lock()

    @property
    def last_transfer(self) -> TransferStats | None:
        return self.transfers[-1] if self.transfers else None

    def add_to_server(self, server: grpc.Server) -> None:
        handler = grpc.stream_stream_rpc_method_handler(
            self._diffcopy,
            request_deserializer=fsutil_pb2.Packet.FromString,
            response_serializer=fsutil_pb2.Packet.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("moby.filesync.v1.FileSync", {"DiffCopy": handler}),)
        )

    def _diffcopy(self, requests, context) -> Iterator[fsutil_pb2.Packet]:
        opts = decode_metadata(context.invocation_metadata())
        name = (opts.get("dir-name") or [""])[0]
        local = self.dirs.get(name)
        if local is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no access allowed to dir {name!r}")
        stats = TransferStats(dir_name=name)
        with self._lock:
            self.transfers.append(stats)
            local.transfers.append(stats)
        try:
            # The client's excludes always apply, as their own filter: "override-excludes" and negations
            # from the daemon only ever act on the daemon's own patterns.
            walker = Walker(local.path, opts.get("include-patterns", []), opts.get("exclude-patterns", []),
                            opts.get("followpaths", []), client_excludes=local.client_excludes())
        except (OSError, ValueError) as exc:
            yield fsutil_pb2.Packet(type=_ERR, data=str(exc).encode())
            return
        yield from _Sender(walker, requests, context, stats).run()


class _Sender:
    """Sends the walk's STATs and the requested files' DATA on one stream, interleaved.

    After each STAT at most DATA_PER_STAT bytes of requested data go out, so neither starves the
    other: the daemon writes files while it still receives stats (sending whole files between
    stats stalled the stats behind 200 MB of blobs; all stats first left the daemon idle meanwhile).
    Requested files go out one after another, in request order.
    """

    def __init__(self, walker: Walker, requests, context, stats: TransferStats):
        self.walker, self.context, self.stats = walker, context, stats
        self.files: dict[int, str] = {}
        self.paths: dict[int, str] = {}
        self.requested: collections.deque[int] = collections.deque()
        self.fd = -1  # open descriptor of requested[0] once its sending has begun
        self.inbox: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(requests,), daemon=True, name="filesync-recv").start()

    def _read(self, requests) -> None:
        try:
            for packet in requests:
                self.inbox.put(packet)
        except Exception as exc:  # the stream broke: wake the sender with the reason
            self.inbox.put(exc)
        self.inbox.put(None)

    def run(self) -> Iterator[fsutil_pb2.Packet]:
        try:
            yield from self._stream()
        finally:
            if self.fd >= 0:
                os.close(self.fd)

    def _stream(self) -> Iterator[fsutil_pb2.Packet]:
        try:
            for index, entry in enumerate(self.walker):
                if is_regular(entry.stat.mode):
                    self.files[index] = entry.abspath
                    self.paths[index] = entry.stat.path
                self.stats.stats += 1
                yield fsutil_pb2.Packet(type=_STAT, stat=entry.stat)
                if (yield from self._take_packets(block=False)):
                    return
                yield from self._send_data(DATA_PER_STAT)
        except OSError as exc:
            yield fsutil_pb2.Packet(type=_ERR, data=f"walking {self.walker.root}: {exc}".encode())
            return
        yield fsutil_pb2.Packet(type=_STAT)
        while not (yield from self._take_packets(block=not self.requested)):
            yield from self._send_data(CHUNK)

    def _take_packets(self, block: bool):
        """Apply the daemon's queued packets (waiting for one if ``block``); True when the transfer is over."""
        while True:
            try:
                item = self.inbox.get(timeout=IDLE_POLL) if block else self.inbox.get_nowait()
            except queue.Empty:
                if not block:
                    return False
                if not self.context.is_active():
                    return True
                continue
            block = False
            if item is None or isinstance(item, Exception):
                return True
            if item.type == _REQ:
                self._request(item.ID)
            elif item.type == _FIN:
                yield fsutil_pb2.Packet(type=_FIN)
                return True
            elif item.type == _ERR:
                self.context.abort(grpc.StatusCode.ABORTED,
                                   f"error from receiver: {item.data.decode(errors='replace')}")

    def _request(self, file_id: int) -> None:
        if file_id not in self.paths:  # unknown, or requested twice
            self.context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid file id {file_id}")
        self.stats.files_requested += 1
        self.stats.requested_paths.append(self.paths.pop(file_id))
        self.requested.append(file_id)

    def _send_data(self, budget: int):
        """Send up to ``budget`` bytes of requested files, each followed by its empty end-of-file DATA."""
        while self.requested and budget > 0:
            file_id = self.requested[0]
            chunk = b""
            try:  # os.open/os.read: open()'s buffered file object costs more than reading a 512 B file
                if self.fd < 0:
                    self.fd = os.open(self.files[file_id], os.O_RDONLY)
                chunk = os.read(self.fd, min(budget, CHUNK))
            except OSError:
                pass  # vanished since the walk: like fsutil, end the file early and let the daemon decide
            if chunk:
                self.stats.data_bytes += len(chunk)
                budget -= len(chunk)
                yield fsutil_pb2.Packet(type=_DATA, ID=file_id, data=chunk)
                continue
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            del self.files[file_id]
            self.requested.popleft()
            yield fsutil_pb2.Packet(type=_DATA, ID=file_id)
