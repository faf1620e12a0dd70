"""Client-side content stores for local cache export/import (``CacheSpec.local``), as buildctl has them.

BuildKit writes and reads a local cache through containerd's Content API on the *client's*
session, choosing the store by gRPC metadata ``buildkit-attachable-store-id: local:<dir>``. Each
store is a directory in OCI layout (``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``):
blobs are written to ``ingest/`` and renamed into place only after their digest and size check
out. After an export, ``index.json`` tags the cache manifest the daemon reports (``cache.manifest``);
an import looks the tag up there and passes its digest to the daemon.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import grpc
from google.protobuf import empty_pb2

from envd_jupyter._proto import content_pb2

STORE_ID_METADATA = "buildkit-attachable-store-id"
STORE_ID_PREFIX = "local:"
CACHE_MANIFEST_KEY = "cache.manifest"  # exporter response: the cache manifest's descriptor (JSON)
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
READ_CHUNK = 1 << 20
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SERVICE = "containerd.services.content.v1.Content"


class ContentError(Exception):
    """A store operation the daemon asked for that cannot be done; carries the gRPC code to answer."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


class LayoutStore:
    """One OCI-layout directory; blob writes are checked and atomic."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LayoutStore({str(self.root)!r})"

    def blob(self, digest: str) -> Path:
        if not _DIGEST.fullmatch(digest or ""):
            raise ContentError(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported digest {digest!r}")
        return self.root / "blobs" / "sha256" / digest.split(":", 1)[1]

    def info(self, digest: str) -> content_pb2.Info:
        try:
            stat = self.blob(digest).stat()
        except FileNotFoundError:
            raise ContentError(grpc.StatusCode.NOT_FOUND, f"content {digest}: not found") from None
        info = content_pb2.Info(digest=digest, size=stat.st_size)
        info.created_at.FromNanoseconds(stat.st_mtime_ns)
        info.updated_at.FromNanoseconds(stat.st_mtime_ns)
        return info

    def read(self, digest: str, offset: int, size: int):
        try:
            blob = self.blob(digest).open("rb")
        except FileNotFoundError:
            raise ContentError(grpc.StatusCode.NOT_FOUND, f"content {digest}: not found") from None
        with blob:
            blob.seek(offset)
            remaining = size or -1
            while remaining:
                data = blob.read(READ_CHUNK if remaining < 0 else min(READ_CHUNK, remaining))
                if not data:
                    return
                yield content_pb2.ReadContentResponse(offset=offset, data=data)
                offset += len(data)
                remaining = -1 if remaining < 0 else remaining - len(data)

    def ingest_path(self, ref: str) -> Path:
        return self.root / "ingest" / hashlib.sha256(ref.encode()).hexdigest()

    def abort(self, ref: str) -> None:
        shutil.rmtree(self.ingest_path(ref), ignore_errors=True)
        try:
            self.ingest_path(ref).parent.rmdir()  # leave no empty ingest/ behind in the user's directory
        except OSError:
            pass

    # -- index.json ---------------------------------------------------------------------------------
    def tagged(self, tag: str) -> str | None:
        """The digest ``index.json`` tags ``tag`` (None when absent), as buildctl reads it."""
        try:
            index = json.loads((self.root / "index.json").read_text())
        except (OSError, ValueError):
            return None
        for manifest in index.get("manifests") or []:
            if (manifest.get("annotations") or {}).get(REF_NAME_ANNOTATION) == tag:
                return manifest.get("digest")
        return None

    def tag(self, descriptor: dict, tag: str) -> None:
        """Point ``tag`` at ``descriptor`` in ``index.json`` (replacing the old entry), written atomically.

        Holds a lock on ``index.json.lock`` meanwhile (the file stays: removing it would let a waiter
        and a newcomer both hold a lock), so two exports into one directory keep each other's tags.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        with (self.root / "index.json.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                index = json.loads((self.root / "index.json").read_text())
            except (OSError, ValueError):
                index = {}
            index.setdefault("schemaVersion", 2)
            index.setdefault("mediaType", "application/vnd.oci.image.index.v1+json")
            entry = {**descriptor, "annotations": {**(descriptor.get("annotations") or {}), REF_NAME_ANNOTATION: tag}}
            index["manifests"] = [m for m in index.get("manifests") or []
                                  if (m.get("annotations") or {}).get(REF_NAME_ANNOTATION) != tag] + [entry]
            staging = self.root / f".index.json.{os.getpid()}.{threading.get_ident()}"
            staging.write_text(json.dumps(index))
            staging.replace(self.root / "index.json")


class _Ingest:
    """One Write stream's blob in progress."""

    def __init__(self, store: LayoutStore, ref: str, total: int, expected: str):
        self.store, self.ref, self.total, self.expected = store, ref, total, expected
        self.started = self.updated = time.time_ns()
        self.path = store.ingest_path(ref)
        self.path.mkdir(parents=True, exist_ok=True)
        self.data = (self.path / "data").open("wb")
        self.hash = hashlib.sha256()
        self.offset = 0

    def write(self, offset: int, data: bytes) -> None:
        if offset and offset != self.offset:
            raise ContentError(grpc.StatusCode.OUT_OF_RANGE,
                               f"write @{offset} must occur at current offset {self.offset}")
        if not offset and self.offset:  # a restart from zero
            self.data.seek(0)
            self.data.truncate()
            self.hash, self.offset = hashlib.sha256(), 0
        self.data.write(data)
        self.hash.update(data)
        self.offset += len(data)
        self.updated = time.time_ns()

    def commit(self, size: int, expected: str) -> str:
        self.data.close()
        digest = "sha256:" + self.hash.hexdigest()
        size, expected = size or self.total, expected or self.expected
        if size and size != self.offset:
            raise ContentError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"unexpected commit size {self.offset}, expected {size}")
        if expected and expected != digest:
            raise ContentError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"unexpected commit digest {digest}, expected {expected}")
        target = self.store.blob(digest)
        if target.exists():
            raise ContentError(grpc.StatusCode.ALREADY_EXISTS, f"content {digest}: already exists")
        target.parent.mkdir(parents=True, exist_ok=True)
        (self.path / "data").replace(target)
        return digest

    def response(self, action: int, digest: str = "") -> content_pb2.WriteContentResponse:
        response = content_pb2.WriteContentResponse(action=action, offset=self.offset, total=self.total, digest=digest)
        response.started_at.FromNanoseconds(self.started)
        response.updated_at.FromNanoseconds(self.updated)
        return response

    def close(self) -> None:
        self.data.close()
        self.store.abort(self.ref)


class ContentStoreService:
    """containerd's Content service over the session, serving several stores by store id."""

    method_paths = tuple(f"/{_SERVICE}/{name}" for name in
                         ("Info", "Update", "List", "Delete", "Read", "Status", "ListStatuses", "Write", "Abort"))

    def __init__(self, stores: dict[str, LayoutStore]):
        self.stores = dict(stores)
        self._ingests: dict[tuple[int, str], _Ingest] = {}  # writes in progress: one per (store, ref)
        self._ingests_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ContentStoreService({sorted(self.stores)})"

    def merge(self, other: "ContentStoreService") -> "ContentStoreService":
        return ContentStoreService({**self.stores, **other.stores})

    def add_to_server(self, server: grpc.Server) -> None:
        def handler(kind, method, request, response=None):
            return getattr(grpc, f"{kind}_rpc_method_handler")(
                self._guard(method, streaming=kind.endswith("_stream")), request_deserializer=request.FromString,
                response_serializer=(response or empty_pb2.Empty).SerializeToString)

        handlers = {
            "Info": handler("unary_unary", self._info, content_pb2.InfoRequest, content_pb2.InfoResponse),
            "Update": handler("unary_unary", self._update, content_pb2.UpdateRequest, content_pb2.UpdateResponse),
            "Read": handler("unary_stream", self._read, content_pb2.ReadContentRequest,
                            content_pb2.ReadContentResponse),
            "Status": handler("unary_unary", self._status, content_pb2.StatusRequest, content_pb2.StatusResponse),
            "Write": handler("stream_stream", self._write, content_pb2.WriteContentRequest,
                             content_pb2.WriteContentResponse),
            "Abort": handler("unary_unary", self._abort, content_pb2.AbortRequest),
        }
        for name, request in (("List", content_pb2.ListContentRequest), ("Delete", content_pb2.DeleteContentRequest),
                              ("ListStatuses", content_pb2.ListStatusesRequest)):
            handlers[name] = handler("unary_unary", self._unimplemented, request)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))

    @staticmethod
    def _guard(method, *, streaming: bool = False):
        """Turn ContentError into the gRPC status the daemon's content proxy understands."""
        def call(request, context):
            try:
                return method(request, context)
            except ContentError as exc:
                context.abort(exc.code, str(exc))

        def stream(request, context):
            try:
                yield from method(request, context)
            except ContentError as exc:
                context.abort(exc.code, str(exc))

        return stream if streaming else call

    def _store(self, context) -> LayoutStore:
        store_id = dict(context.invocation_metadata()).get(STORE_ID_METADATA, "")
        store = self.stores.get(store_id)
        if store is None:
            raise ContentError(grpc.StatusCode.NOT_FOUND, f"unknown content store {store_id!r}")
        return store

    def _info(self, request, context):
        return content_pb2.InfoResponse(info=self._store(context).info(request.digest))

    def _update(self, request, context):
        return content_pb2.UpdateResponse(info=self._store(context).info(request.info.digest))

    def _read(self, request, context):
        yield from self._store(context).read(request.digest, request.offset, request.size)

    def _status(self, request, context):
        ingest = self._ingests.get((id(self._store(context)), request.ref))
        if ingest is None:
            raise ContentError(grpc.StatusCode.NOT_FOUND, f"ref {request.ref}: not found")
        status = content_pb2.Status(ref=ingest.ref, offset=ingest.offset, total=ingest.total, expected=ingest.expected)
        status.started_at.FromNanoseconds(ingest.started)
        status.updated_at.FromNanoseconds(ingest.updated)
        return content_pb2.StatusResponse(status=status)

    def _abort(self, request, context):
        self._store(context).abort(request.ref)
        return empty_pb2.Empty()

    def _write(self, requests, context):
        store = self._store(context)
        first = next(requests, None)
        if first is None:
            return
        if not first.ref:
            raise ContentError(grpc.StatusCode.INVALID_ARGUMENT, "first message of a write must name a ref")
        if first.expected and store.blob(first.expected).exists():
            raise ContentError(grpc.StatusCode.ALREADY_EXISTS, f"content {first.expected}: already exists")
        key = (id(store), first.ref)
        with self._ingests_lock:
            if key in self._ingests:
                raise ContentError(grpc.StatusCode.UNAVAILABLE, f"ref {first.ref} locked: another write is in progress")
            ingest = self._ingests[key] = _Ingest(store, first.ref, first.total, first.expected)
        try:
            request = first
            while request is not None:
                digest = ""
                if request.action in (content_pb2.WRITE, content_pb2.COMMIT):
                    if request.total:
                        ingest.total = request.total
                    ingest.write(request.offset, request.data)
                if request.action == content_pb2.COMMIT:
                    digest = ingest.commit(request.total, request.expected)
                yield ingest.response(request.action, digest)
                if digest:
                    return
                request = next(requests, None)
        finally:
            self._ingests.pop(key, None)
            ingest.close()

    def _unimplemented(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not served by this session's content store")
