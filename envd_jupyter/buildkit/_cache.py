"""Cache import/export options for a solve, including the client side of ``type=local`` caches.

A local cache lives in a directory on the *client*: the daemon reads and writes it through a
content store in the session (``session.content``), the way buildctl does. So a solve with local
cache specs adds that store to its session, an import is pinned to the digest ``index.json`` tags
(skipped, like buildctl, when the directory holds no cache yet), and after a successful export
``index.json`` is pointed at the new cache manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from envd_jupyter._proto import control_pb2
from envd_jupyter.buildkit._errors import InvalidDefinitionError
from envd_jupyter.buildkit._session.content import (CACHE_MANIFEST_KEY, STORE_ID_PREFIX, ContentStoreService,
                                                   LayoutStore)


def cache_entry(spec) -> control_pb2.CacheOptionsEntry:
    """A CacheOptionsEntry from a CacheSpec, a (type, attrs) pair or {"type", "attrs"}."""
    if isinstance(spec, control_pb2.CacheOptionsEntry):
        return spec
    if isinstance(spec, Mapping):
        kind, attrs = spec["type"], spec.get("attrs", {})
    elif isinstance(spec, tuple):
        kind, attrs = spec
    else:
        kind, attrs = spec.type, spec.attrs
    return control_pb2.CacheOptionsEntry(Type=kind, Attrs=dict(attrs))


@dataclass
class CachePlan:
    """What one solve sends (``imports``/``exports``) and the local stores its session serves."""

    imports: list = field(default_factory=list)
    exports: list = field(default_factory=list)
    stores: dict = field(default_factory=dict)  # store id -> LayoutStore
    tags: list = field(default_factory=list)  # (LayoutStore, tag) to point at the exported cache

    def session_services(self) -> list:
        if not self.stores:
            return []
        return [ContentStoreService(self.stores)]

    def finish(self, exporter_response: Mapping[str, str]) -> None:
        """After a successful solve: tag the exported cache manifest in each local export's index.json."""
        manifest = exporter_response.get(CACHE_MANIFEST_KEY)
        if manifest:
            for store, tag in self.tags:
                store.tag(json.loads(manifest), tag)


def plan_cache(cache_imports=(), cache_exports=()) -> CachePlan:
    plan = CachePlan()
    for spec in cache_exports:
        entry = cache_entry(spec)
        if entry.Type == "local":
            store = _store(plan, entry.Attrs.get("dest"), "export")
            plan.tags.append((store, entry.Attrs.get("tag", "latest")))
        plan.exports.append(entry)
    for spec in cache_imports:
        entry = cache_entry(spec)
        if entry.Type == "local":
            store = _store(plan, entry.Attrs.get("src"), "import")
            if not entry.Attrs.get("digest"):
                digest = store.tagged(entry.Attrs.get("tag", "latest"))
                if digest is None:
                    continue  # nothing exported there yet: build without it, as buildctl does
                entry = control_pb2.CacheOptionsEntry(Type=entry.Type, Attrs={**entry.Attrs, "digest": digest})
        plan.imports.append(entry)
    return plan


def _store(plan: CachePlan, directory: str | None, direction: str):
    if not directory:
        attr = "dest" if direction == "export" else "src"
        raise InvalidDefinitionError(f"local cache {direction} needs a {attr!r} directory")
    store_id = STORE_ID_PREFIX + directory
    if store_id not in plan.stores:
        if direction == "export":
            Path(directory).mkdir(parents=True, exist_ok=True)
        plan.stores[store_id] = LayoutStore(directory)
    return plan.stores[store_id]
