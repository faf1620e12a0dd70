"""Small builders shared by the scheduler tests."""

from __future__ import annotations

import random

from envd_jupyter.scheduler import BuildRequest, Cycle, Endpoint, Scheduler, Vertex
from envd_jupyter.scheduler._framework.endpoint import Snapshot
from envd_jupyter.scheduler._framework.interfaces import PluginHandle
from envd_jupyter.scheduler._cache_index import CacheIndex
from envd_jupyter.scheduler._registry import parse_params, plugin_types


def chain(prefix: str, n: int, kind: str = "exec") -> list[Vertex]:
    """``n`` vertices, each built on the one before."""
    return [Vertex(f"sha256:{prefix}{i}", kind, inputs=(i - 1,) if i else ()) for i in range(n)]


def request(vertices=None, **kwargs) -> BuildRequest:
    return BuildRequest(vertices if vertices is not None else chain("v", 3), **kwargs)


def make_plugin(type_name: str, params: dict | None = None, index: CacheIndex | None = None, name: str | None = None):
    cls = plugin_types()[type_name]
    return cls(name or type_name, parse_params(cls, params), PluginHandle(index or CacheIndex()))


def cycle(req: BuildRequest | None = None, endpoints=(), reserved=None, results=None, now: float = 100.0, seed: int = 0) -> Cycle:
    return Cycle("test", req or request(), Snapshot(endpoints, reserved or {}, now), random.Random(seed), results or {})


def names(endpoints) -> list[str]:
    return [e.name for e in endpoints]


def single_profile(plugins_yaml: str, refs_yaml: str) -> str:
    return f"plugins:\n{plugins_yaml}\nschedulingProfiles:\n- name: default\n  plugins:\n{refs_yaml}\n"


__all__ = ["Endpoint", "Scheduler", "Vertex", "chain", "cycle", "make_plugin", "names", "request", "single_profile"]
