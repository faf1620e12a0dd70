"""Why a solve failed, said once for every path: which step, its exit code, its last lines, the user's line."""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

import grpc

from envd_jupyter._proto import worker_pb2

from envd_jupyter.buildkit._errors import ConnectError, DaemonError, SolveCancelled, SolveError
from envd_jupyter.buildkit._progress import BuildModel

LOG_TAIL_LINES = 10
_STATUS_DETAILS = "grpc-status-details-bin"  # google.rpc.Status with typed details, next to the message
_EXIT_CODE = re.compile(r"exit code: (\d+)")
_UNKNOWN_CACHE_EXPORTER = re.compile(r'unknown cache exporter: "([^"]*)"')
_REGISTRY_REFUSED = re.compile(r"401 Unauthorized|no basic auth credentials|authorization failed", re.IGNORECASE)


def locator(*definitions: Any):
    """digest -> "file:line" from llb Definitions' source maps (the first that knows it; "" when none does)."""
    maps = [d.locations for d in definitions if getattr(d, "locations", None) is not None]

    def locate(digest: str) -> str:
        found = next((hit for hit in (locations(digest) for locations in maps) if hit), [])
        return f"{found[0].filename}:{found[0].line}" if found else ""

    return locate


def solve_error(details: str, model: BuildModel, locate=lambda digest: "",
                among: frozenset[str] | None = None) -> SolveError:
    """A one-line SolveError naming the failed step and its exit code, with its last log lines.

    ``among``: the digests the failed solve owned (an interactive build's model holds earlier solves too).
    """
    unknown_cache = _UNKNOWN_CACHE_EXPORTER.search(details)
    if unknown_cache:
        return SolveError(f"cache export type {unknown_cache.group(1)!r} is not supported by this daemon "
                          "(dockerd with the classic image store, 20.10 or 26, exports only inline cache): use "
                          "CacheSpec.inline(), a dockerd with the containerd image store, or buildkitd",
                          detail=details)
    match = _EXIT_CODE.search(details)
    exit_code = int(match.group(1)) if match else None
    owned = [v for v in model.failed() if among is None or v.digest in among]
    failed = [v for v in owned if not v.error.endswith("context canceled")] or owned
    if not failed:
        return SolveError(f"solve failed: {details}", exit_code=exit_code, detail=details)
    step = failed[-1]
    location = locate(step.digest)
    head = f"step {step.name!r}{f' ({location})' if location else ''} failed"
    head += f" with exit code {exit_code}" if exit_code is not None else f": {step.error}"
    return SolveError(head, step=step.name, digest=step.digest, exit_code=exit_code, location=location,
                      log_tail=tuple(step.log_tail(LOG_TAIL_LINES)), detail=details)


def failed_mounts(error: grpc.RpcError) -> tuple[tuple[str, str], ...]:
    """The failed exec's bind mounts as (dest, result id), "/" first, from BuildKit's errdefs.Solve detail.

    A gateway Solve's error carries it (BuildKit 0.9 and later; 0.8 sends no details): the ids name the
    mounts as they were when the step failed, registered for ``NewContainer`` in that build.
    """
    try:
        trailers = error.trailing_metadata() or ()
    except Exception:  # an error raised before any call: no trailers
        return ()
    for key, value in trailers:
        if key != _STATUS_DETAILS:
            continue
        for detail in worker_pb2.RPCStatus.FromString(value).details:
            if detail.type_url.endswith("errdefs.Solve+json"):
                return _bind_mounts(json.loads(detail.value))
    return ()


def _bind_mounts(solve: dict) -> tuple[tuple[str, str], ...]:
    mounts = solve.get("op", {}).get("exec", {}).get("mounts", [])
    ids = solve.get("mountIDs", [])
    found = [(m.get("dest", ""), ids[i]) for i, m in enumerate(mounts)
             if i < len(ids) and ids[i] and m.get("mountType", "BIND") == "BIND"]
    return tuple(sorted(found, key=lambda mount: mount[0] != "/")) if any(d == "/" for d, _ in found) else ()


def session_failure(error: OSError, address: Any) -> ConnectError | DaemonError:
    """What to raise when the session stream to the daemon cannot be opened (a socket error, or dockerd
    refusing or dropping the upgrade): nothing listening is a ``ConnectError``, anything else a
    ``DaemonError`` (it went away or stopped answering), so callers that fail over catch it."""
    reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if isinstance(error, (ConnectionRefusedError, FileNotFoundError)):
        return ConnectError(f"opening a session to {address}: nothing answered ({reason})")
    return DaemonError(f"opening a session to {address}: the daemon went away or stopped answering ({reason})")


def explain(error: grpc.RpcError, *, address, model: BuildModel, definitions: Sequence[Any] = (),
            services: Sequence[Any] = (), timeout: float | None = None,
            among: frozenset[str] | None = None) -> Exception:
    """What to raise for a failed Solve (Control or gateway), given what the Status stream and session saw.

    A credential-helper failure wins (clearer than the daemon's wrapping of it); a registry that
    refused a host we sent no credentials for gets that said, so the user knows what to configure.
    """
    for service in services:
        if getattr(service, "failure", None) is not None:
            return service.failure
    code, details = error.code(), model.mask.text(error.details() or "")
    if code == grpc.StatusCode.UNAVAILABLE:
        return DaemonError(f"the daemon at {address} went away mid-solve ({details})")
    if code == grpc.StatusCode.CANCELLED:
        return SolveCancelled(f"solve cancelled ({details})")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return SolveError(f"solve timed out after {timeout}s", detail=details)
    failure = solve_error(details, model, locator(*definitions), among)
    if _REGISTRY_REFUSED.search(str(failure)):
        for service in services:
            hint = getattr(service, "anonymous_hint", lambda message: "")(str(failure))
            if hint:
                failure.args = (failure.args[0] + hint, *failure.args[1:])
                break
    return failure
