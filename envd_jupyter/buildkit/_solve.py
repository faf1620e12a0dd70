"""``Client.start_solve``: lower the target for the daemon and solve it in its own thread, through one lifecycle.

Exports that need result metadata (an image config for dockerd's ``moby`` exporter) cannot ride a
plain Control.Solve, so such a solve is run as an interactive build that Returns the ref with that
metadata; either way it is one ``SolveLifecycle`` and one ``SolveHandle``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from envd_jupyter.buildkit._gateway import open_build
from envd_jupyter.buildkit._handle import SolveHandle
from envd_jupyter.buildkit._lifecycle import SolveLifecycle, SolveResult
from envd_jupyter.buildkit._progress import EventCallback
from envd_jupyter.buildkit._request import lower, result_metadata, serialize
from envd_jupyter.buildkit._session import Export


def start_solve(client, target: Any, *, exports: Sequence[Export] = (), cache_imports=(), cache_exports=(),
                secrets: Mapping | None = None, local_dirs: Mapping | None = None, entitlements: Sequence[str] = (),
                on_event: EventCallback | Sequence[EventCallback] | None = None, timeout: float | None = None,
                name: str | None = None, credential_hosts: Sequence[str] = ()) -> SolveHandle:
    """Start solving ``target`` (State, Definition or bytes) on ``client``'s daemon; returns at once.

    ``exports``: ``Export`` objects (Image, LocalDir, Tarball, ...); more than one needs BuildKit >= 0.13.
    ``cache_imports``/``cache_exports``: CacheSpec, (type, attrs) or {"type", "attrs"}.
    ``secrets``: {id: source}; ``local_dirs``: {name: path | LocalDir} for ``local()`` sources.
    ``on_event``: callback(s) receiving VertexEvents from the Status thread; one that raises
    cancels the solve on the daemon and its exception is what the handle raises. ``timeout`` bounds
    the whole solve on the daemon; ``name`` is the build's name in BuildKit's history.
    Registry credentials go only to hosts the build references (image sources, pushed names,
    registry caches) and to ``credential_hosts``; each hand-out shows as an "[auth] ..." progress line.
    The handle raises CapsError, InvalidDefinitionError, SolveError, SolveCancelled or DaemonError.
    """
    lifecycle = SolveLifecycle(client, exports=exports, cache_imports=cache_imports, cache_exports=cache_exports,
                               secrets=secrets, local_dirs=local_dirs, entitlements=entitlements,
                               on_event=on_event, timeout=timeout, name=name, credential_hosts=credential_hosts)
    return SolveHandle(lifecycle, lambda: _run(lifecycle, target))


def _run(lifecycle: SolveLifecycle, target: Any) -> SolveResult:
    try:
        lowered = lower(target, lifecycle.client.caps().llb)
        definition = serialize(lowered)
        metadata = result_metadata(lifecycle.exports)
        if metadata:
            build = open_build(lifecycle)
            return build.finish(build.solve(lowered, timeout=lifecycle.timeout), metadata=metadata,
                                timeout=lifecycle.timeout)
        lifecycle.add_definition(lowered, definition)
        lifecycle.start(definition)
        lifecycle.answered.wait()  # bounded by ``timeout`` on the daemon; cancel() ends it at once
        return lifecycle.conclude()
    except BaseException:
        lifecycle.cancel()  # nothing if it has ended
        lifecycle.end(False)
        raise
