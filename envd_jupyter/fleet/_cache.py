"""A registry cache shared by every builder, so a cold builder reuses a warm one's work.

Each build exports its cache to ``REGISTRY/envd-jupyter/fleet-cache:<head chain key>`` with
``mode=max`` (every intermediate step; not again once the registry holds every step of it) where the daemon can (buildkitd; dockerd with the containerd
image store); elsewhere it adds inline cache to an image it pushes to that registry, if it pushes one.
A build imports the caches whose chains overlap its own most (at most ``max_imports``), unless the
pick already holds at least as much itself. What each cache holds is told to the scheduler's cache
index under the holder ``registry:HOST``, which the affinity scorer counts as a weaker hit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Container, Sequence

from envd_jupyter import buildkit
from envd_jupyter.scheduler import BuildRequest

REPOSITORY = "envd-jupyter/fleet-cache"
KNOWN_REFS = 256  # cache refs remembered (oldest forgotten first)


class SharedCache:
    """The registry cache refs this fleet exported, and which chain keys each one holds."""

    def __init__(self, registry: str, cache_index: Any, *, max_imports: int = 3):
        self.registry = registry
        self.holder = cache_index.registry_holder(registry)
        self._index = cache_index
        self.max_imports = max_imports
        self._refs: OrderedDict[str, frozenset[int]] = OrderedDict()
        self._lock = threading.Lock()

    def ref_for(self, request: BuildRequest) -> str:
        head = request.chain_keys[-1] if request.chain_keys else 0
        return f"{self.registry}/{REPOSITORY}:{head:016x}"

    def specs(self, request: BuildRequest, solved_there: Container[str], registry_cache: bool,
              exports: Sequence[Any]) -> tuple[list, list]:
        """(cache_imports, cache_exports) for ``request`` on a builder that reported ``solved_there`` (digests)."""
        imports = [buildkit.CacheSpec.registry(ref) for ref in self._imports_for(request, solved_there)]
        if registry_cache and not self.holds(request):
            return imports, [buildkit.CacheSpec.registry(self.ref_for(request), mode="max")]
        if any(self._pushed_here(export) for export in exports):
            return imports, [buildkit.CacheSpec.inline()]
        return imports, []

    def exported(self, request: BuildRequest, cache_exports: Sequence[Any], exports: Sequence[Any],
                 done_keys: Sequence[int]) -> None:
        """After a successful solve: the registry now holds ``done_keys`` under the ref(s) it exported."""
        refs = []
        for spec in cache_exports:
            if spec.type == "registry":
                refs.append(spec.attrs["ref"])
            elif spec.type == "inline":
                refs += [name for export in exports if self._pushed_here(export) for name in export.names]
        if not refs or not done_keys:
            return
        with self._lock:
            for ref in refs:
                self._refs[ref] = frozenset(done_keys)
                self._refs.move_to_end(ref)
            while len(self._refs) > KNOWN_REFS:
                self._refs.popitem(last=False)
            self._index.record(self.holder, done_keys)

    def holds(self, request: BuildRequest) -> bool:
        """Whether the registry already holds every step of ``request`` (exporting again would add nothing)."""
        return all(self.holder in self._index.holders(key) for key in request.chain_keys)

    def _imports_for(self, request: BuildRequest, solved_there: Container[str]) -> list[str]:
        """Refs whose chains overlap the request's most, when they hold more of it than the builder did.

        What the builder holds is what it reported running or serving from cache (not the scheduler's
        approximate index, which already counts the chain as there once the builder is picked).
        """
        keys = request.chain_keys
        local = sum(1 for vertex in request.vertices if vertex.digest in solved_there)
        with self._lock:
            overlap = [(len(held.intersection(keys)), ref) for ref, held in self._refs.items()]
        ranked = sorted(((n, ref) for n, ref in overlap if n > local), key=lambda item: -item[0])
        return [ref for _, ref in ranked[:self.max_imports]]

    def _pushed_here(self, export: Any) -> bool:
        """An image pushed to this registry (by BuildKit, or by dockerd after the solve)."""
        pushed = isinstance(export, buildkit.PushViaDocker) or export.attrs.get("push") == "true"
        return pushed and any(n.startswith(self.registry + "/") for n in getattr(export, "names", ()))
