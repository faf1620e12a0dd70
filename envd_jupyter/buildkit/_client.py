"""``Client``: the Control API (workers, info, disk usage, prune, caps) and ``solve``.

One Client wraps one transport (direct buildkitd or dockerd proxy). Every call has a timeout;
caps are read once per client from a gateway Ping inside a tiny gateway build.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import grpc

from envd_jupyter._proto import control_pb2, control_pb2_grpc, gateway_pb2, gateway_pb2_grpc
from envd_jupyter.buildkit._errors import DaemonError
from envd_jupyter.buildkit._session.transport import new_id

if TYPE_CHECKING:
    from envd_jupyter.buildkit._gateway import Build
    from envd_jupyter.buildkit._history import HistoryRecord, HistoryStep, HistoryWatch
    from envd_jupyter.buildkit._progress import BuildModel
    from envd_jupyter.buildkit._handle import SolveHandle
    from envd_jupyter.buildkit._lifecycle import SolveResult

BUILD_ID_METADATA = "buildkit-controlapi-buildid"


@dataclass(frozen=True)
class Worker:
    id: str
    labels: dict[str, str]
    platforms: tuple[str, ...]
    buildkit_version: str = ""


@dataclass(frozen=True)
class BuildKitInfo:
    """The daemon's BuildKit version; ``source`` says where it came from (Info, workers, none)."""

    package: str
    version: str
    revision: str
    source: str


@dataclass(frozen=True)
class UsageRecord:
    id: str
    size: int
    mutable: bool
    in_use: bool
    shared: bool
    record_type: str
    description: str
    usage_count: int
    parents: tuple[str, ...]
    created_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class Caps:
    """Enabled capability ids: LLB (what the solver understands) and gateway (frontend API)."""

    llb: frozenset[str]
    gateway: frozenset[str]

    def has(self, cap: str) -> bool:
        return cap in self.llb or cap in self.gateway


def _platform_text(platform) -> str:
    text = f"{platform.OS}/{platform.Architecture}"
    return text + (f"/{platform.Variant}" if platform.Variant else "")


def _time(message, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    return getattr(message, name).ToDatetime(tzinfo=timezone.utc)


class Client:
    """A connected BuildKit daemon. Create it with ``envd_jupyter.buildkit._connect``."""

    def __init__(self, transport, *, timeout: float = 10.0):
        self.transport = transport
        self.address = transport.address
        self.timeout = timeout
        self.control = control_pb2_grpc.ControlStub(transport.channel)
        self.gateway = gateway_pb2_grpc.LLBBridgeStub(transport.channel)
        self._caps: Caps | None = None
        self._caps_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<buildkit.Client {self.address}>"

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, what: str, method, request, **kwargs):
        try:
            return method(request, timeout=kwargs.pop("timeout", self.timeout), **kwargs)
        except grpc.RpcError as exc:
            raise DaemonError(f"{what} on {self.address}: {exc.code().name}: {exc.details()}") from None

    def workers(self) -> list[Worker]:
        response = self._call("ListWorkers", self.control.ListWorkers, control_pb2.ListWorkersRequest())
        return [Worker(w.ID, dict(w.Labels), tuple(_platform_text(p) for p in w.platforms),
                       w.BuildkitVersion.version) for w in response.record]

    def info(self) -> BuildKitInfo:
        """Info where the daemon has it (BuildKit >= 0.11); otherwise the workers' version, if any."""
        try:
            version = self.control.Info(control_pb2.InfoRequest(), timeout=self.timeout).buildkitVersion
            return BuildKitInfo(version.package, version.version, version.revision, "info")
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise DaemonError(f"Info on {self.address}: {exc.code().name}: {exc.details()}") from None
        for worker in self.workers():
            if worker.buildkit_version:
                return BuildKitInfo("", worker.buildkit_version, "", "workers")
        return BuildKitInfo("", "", "", "none")

    def disk_usage(self, filters: tuple[str, ...] = ()) -> list[UsageRecord]:
        response = self._call("DiskUsage", self.control.DiskUsage,
                              control_pb2.DiskUsageRequest(filter=list(filters)))
        return [self._usage(r) for r in response.record]

    def prune(self, *, all: bool = False, filters: tuple[str, ...] = (), keep_duration: float = 0,
              keep_bytes: int = 0, timeout: float | None = 120.0) -> list[UsageRecord]:
        """Remove build cache; returns what was removed. ``keep_duration`` in seconds."""
        request = control_pb2.PruneRequest(filter=list(filters), all=all, keepDuration=int(keep_duration * 1e9),
                                           reservedSpace=keep_bytes)
        try:
            return [self._usage(r) for r in self.control.Prune(request, timeout=timeout)]
        except grpc.RpcError as exc:
            raise DaemonError(f"Prune on {self.address}: {exc.code().name}: {exc.details()}") from None

    @staticmethod
    def _usage(r) -> UsageRecord:
        parents = tuple(r.Parents) or ((r.Parent,) if r.Parent else ())
        return UsageRecord(r.ID, r.Size, r.Mutable, r.InUse, r.Shared, r.RecordType, r.Description,
                           r.UsageCount, parents, _time(r, "CreatedAt"), _time(r, "LastUsedAt"))

    def caps(self, *, refresh: bool = False) -> Caps:
        """LLB and gateway caps from a gateway Ping (cached per client)."""
        with self._caps_lock:
            if self._caps is None or refresh:
                pong = self._ping()
                self._caps = Caps(frozenset(c.ID for c in pong.LLBCaps if c.Enabled),
                                  frozenset(c.ID for c in pong.FrontendAPICaps if c.Enabled))
            return self._caps

    def _ping(self) -> gateway_pb2.PongResponse:
        """Open an empty gateway build, Ping it, and Return nothing so the build ends at once."""
        ref = new_id()
        request = control_pb2.SolveRequest(Ref=ref, Session=new_id(), Internal=True)
        solve = self.control.Solve.future(request, timeout=self.timeout)
        metadata = ((BUILD_ID_METADATA, ref),)
        try:
            pong = self._call("gateway Ping", self.gateway.Ping, gateway_pb2.PingRequest(), metadata=metadata)
            self._call("gateway Return", self.gateway.Return,
                       gateway_pb2.ReturnRequest(result=gateway_pb2.Result()), metadata=metadata)
            solve.result(timeout=self.timeout)
        except grpc.RpcError as exc:
            raise DaemonError(f"caps build on {self.address}: {exc.code().name}: {exc.details()}") from None
        except grpc.FutureTimeoutError:
            raise DaemonError(f"caps build on {self.address}: no answer in {self.timeout}s") from None
        finally:
            solve.cancel()
        return pong

    def start_solve(self, target, **options) -> "SolveHandle":
        """Start solving an LLB State/Definition in its own thread; see ``_solve.start_solve`` for the options."""
        from envd_jupyter.buildkit._solve import start_solve

        return start_solve(self, target, **options)

    def solve(self, target, **options) -> "SolveResult":
        """Solve and wait: ``start_solve(target, **options).result()`` (Ctrl-C cancels the solve on the daemon)."""
        return self.start_solve(target, **options).result()

    async def solve_async(self, target, **options) -> "SolveResult":
        """``solve`` for asyncio: ``await start_solve(...)``; cancelling the awaiting task cancels the solve."""
        return await self.start_solve(target, **options)

    def interactive(self, **options) -> "Build":
        """An interactive gateway build (``with client.interactive() as b:``); see ``_gateway``."""
        from envd_jupyter.buildkit._gateway import interactive

        return interactive(self, **options)

    def history(self, *, ref: str | None = None, active_only: bool = False, limit: int | None = None,
                status: str | None = None, name: str | None = None) -> list["HistoryRecord"]:
        """The daemon's build history, newest first (filters applied here); see ``_history``."""
        from envd_jupyter.buildkit._history import history

        return history(self, ref=ref, active_only=active_only, limit=limit, status=status, name=name)

    def watch_history(self, on_event, on_error=None) -> "HistoryWatch":
        """Call ``on_event(kind, record)`` ("started", "completed", "deleted") until ``.close()``."""
        from envd_jupyter.buildkit._history import watch_history

        return watch_history(self, on_event, on_error)

    def history_logs(self, ref: str, *, timeout: float | None = None) -> "BuildModel":
        """A past build's steps and logs, replayed by ``Status(ref)`` (a running one: until ``timeout``)."""
        from envd_jupyter.buildkit._history import history_logs

        return history_logs(self, ref, timeout=timeout)

    def history_steps(self, ref: str) -> list["HistoryStep"]:
        """The LLB steps of a build's provenance attestation ([] when it recorded none)."""
        from envd_jupyter.buildkit._history import provenance_steps

        return provenance_steps(self, ref)

    def pin_history(self, ref: str, pinned: bool = True) -> None:
        """Pin (or unpin) a record so the daemon's retention keeps it."""
        from envd_jupyter.buildkit._history import update_history

        update_history(self, ref, pinned=pinned)

    def delete_history(self, ref: str) -> None:
        from envd_jupyter.buildkit._history import update_history

        update_history(self, ref, delete=True)

    def labelled_images(self, label: str) -> list[dict]:
        """Summaries (Id, Created, Labels, ...) of the images in dockerd's store carrying ``label``.

        Read over dockerd's HTTP API; a standalone buildkitd has no such store, so its answer is [].
        """
        if self.address.kind != "docker":
            return []
        from envd_jupyter.buildkit._engine import labelled_images

        try:
            return labelled_images(self.address, label, timeout=self.timeout, tls=getattr(self.transport, "tls", None))
        except OSError as exc:
            raise DaemonError(f"listing images labelled {label!r} on {self.address}: {exc}") from None
