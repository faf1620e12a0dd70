"""Replay simulator: builds sharing base chains, routed over N builders with LRU caches.

A trace draws each build's base chain from a Zipf law over ``bases`` chains and appends a few
vertices unique to the build; each build belongs to one of ``projects_per_base`` projects on its
base (its ``context`` attribute, the key sticky hashing routes by, as buildx hashes a context path).
Builders run ``slots`` builds at once (the rest queue, FIFO),
keep an LRU of ``cache_entries`` chain keys, and spend a vertex's duration only when its
chain key is not cached. Routing policies are plain callables so the real ``Scheduler`` and
naive baselines (round-robin, sticky hashing) compete on the same trace.

Reported per policy: the share of work served from cache, and the build-time proxy
(finish − arrival: queueing plus uncached work), mean and p95.
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ._framework.endpoint import Endpoint
from ._framework.request import BuildRequest, Vertex
from ._framework.scheduler import Scheduler


@dataclass(frozen=True)
class TraceParams:
    builds: int = 2000
    bases: int = 50
    base_depth: int = 10
    user_vertices: int = 3
    zipf_s: float = 1.1
    arrival_rate: float = 1.0  # builds per simulated second
    seed: int = 0
    projects_per_base: int = 3  # each build belongs to one project (its ``context`` attribute) on its base


@dataclass(frozen=True)
class TraceBuild:
    arrival: float
    request: BuildRequest
    durations: tuple[float, ...]


def make_trace(p: TraceParams) -> list[TraceBuild]:
    """A reproducible trace: Poisson arrivals, Zipf-chosen bases, recorded durations."""
    rng = random.Random(p.seed)
    bases = []
    for b in range(p.bases):
        chain = [Vertex(f"sha256:base{b}-0", "image", duration=rng.uniform(5, 20))]
        chain += [Vertex(f"sha256:base{b}-{k}", "exec", duration=rng.expovariate(1 / 20), inputs=(k - 1,))
                  for k in range(1, p.base_depth)]
        bases.append(chain)
    weights = [1.0 / (rank + 1) ** p.zipf_s for rank in range(p.bases)]
    order = list(range(p.bases))
    rng.shuffle(order)  # popularity unrelated to base index
    chosen = rng.choices(order, weights=weights, k=p.builds)
    projects = random.Random(p.seed + 1)  # a stream of its own: the rest of the trace is as without projects
    trace, now = [], 0.0
    for i, base in enumerate(chosen):
        now += rng.expovariate(p.arrival_rate)
        user = [Vertex(f"sha256:user{i}-{k}", "exec", duration=rng.uniform(1, 6),
                       inputs=(p.base_depth + k - 1,) if p.base_depth + k else ())
                for k in range(p.user_vertices)]  # a chain on top of the base's last vertex
        vertices = bases[base] + user
        context = f"/src/base{base}/project{projects.randrange(p.projects_per_base)}"
        request = BuildRequest(vertices, id=str(i), attributes={"context": context})
        trace.append(TraceBuild(now, request, tuple(v.duration or 0.0 for v in vertices)))
    return trace


def cold_work(trace: Sequence[TraceBuild]) -> float:
    """Mean work of a build with nothing cached."""
    return sum(sum(b.durations) for b in trace) / max(1, len(trace))


@dataclass
class _Builder:
    name: str
    cache: OrderedDict = field(default_factory=OrderedDict)
    running: int = 0
    queue: deque = field(default_factory=deque)
    version: int = 0


@dataclass
class SimResult:
    policy: str
    builders: int
    hit_share: float
    mean_time: float
    p95_time: float
    max_in_flight: int


#: A policy sees the request and the current endpoints and returns the chosen endpoint's index.
Policy = Callable[[BuildRequest, list[Endpoint]], int]


def scheduler_policy(scheduler: Scheduler) -> Policy:
    def route(request: BuildRequest, endpoints: list[Endpoint]) -> int:
        chosen = scheduler.schedule(request, endpoints).endpoint
        return int(chosen.name.rsplit("-", 1)[1])

    return route


def round_robin_policy() -> Policy:
    counter = iter(range(1 << 62))
    return lambda request, endpoints: next(counter) % len(endpoints)


def simulate(trace: Sequence[TraceBuild], builders: int, policy: Policy, *, name: str,
             slots: int = 2, cache_entries: int = 200, report_cached: bool = False) -> SimResult:
    """Replay ``trace`` over ``builders`` builders; ``report_cached`` fills ``cached_digests``."""
    pool = [_Builder(f"builder-{i}") for i in range(builders)]

    def endpoint(b: _Builder) -> Endpoint:
        cached = frozenset(b.cache_digests) if report_cached else frozenset()
        return Endpoint(b.name, in_flight=b.running + len(b.queue), version=b.version, cached_digests=cached)

    for b in pool:
        b.cache_digests = {}  # type: ignore[attr-defined]  (digest → count, only for precise reports)
    endpoints = [endpoint(b) for b in pool]
    events: list[tuple[float, int, int, int]] = []  # (time, seq, builder, build)
    seq = 0
    hit_work = total_work = 0.0
    times: list[float] = []
    peak = 0

    def start(i: int, build_idx: int, now: float) -> None:
        nonlocal seq, hit_work, total_work
        b, build = pool[i], trace[build_idx]
        work = 0.0
        for key, duration in zip(build.request.chain_keys, build.durations):
            total_work += duration
            if key in b.cache:
                b.cache.move_to_end(key)
                hit_work += duration
            else:
                work += duration
        b.running += 1
        seq += 1
        heapq.heappush(events, (now + work, seq, i, build_idx))

    def finish(i: int, build_idx: int) -> None:
        b, build = pool[i], trace[build_idx]
        for key, vertex in zip(build.request.chain_keys, build.request.vertices):
            if key in b.cache:
                b.cache.move_to_end(key)
            else:
                b.cache[key] = vertex.digest
                b.cache_digests[vertex.digest] = b.cache_digests.get(vertex.digest, 0) + 1
        while len(b.cache) > cache_entries:
            _, digest = b.cache.popitem(last=False)
            left = b.cache_digests[digest] - 1
            if left:
                b.cache_digests[digest] = left
            else:
                del b.cache_digests[digest]
        b.running -= 1

    def refresh(i: int) -> None:
        pool[i].version += 1
        endpoints[i] = endpoint(pool[i])

    for build_idx, build in enumerate(trace):
        while events and events[0][0] <= build.arrival:
            done_at, _, i, finished = heapq.heappop(events)
            times.append(done_at - trace[finished].arrival)
            finish(i, finished)
            if pool[i].queue:
                start(i, pool[i].queue.popleft(), done_at)
            refresh(i)
        i = policy(build.request, endpoints)
        b = pool[i]
        if b.running < slots:
            start(i, build_idx, build.arrival)
        else:
            b.queue.append(build_idx)
        peak = max(peak, b.running + len(b.queue))
        refresh(i)
    while events:
        done_at, _, i, finished = heapq.heappop(events)
        times.append(done_at - trace[finished].arrival)
        finish(i, finished)
        if pool[i].queue:
            start(i, pool[i].queue.popleft(), done_at)
    times.sort()
    return SimResult(name, builders, hit_work / total_work if total_work else 0.0,
                     sum(times) / len(times), times[int(0.95 * (len(times) - 1))], peak)
