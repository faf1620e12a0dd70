"""Replay simulator: cache-affinity vs load-only vs round-robin vs random at 10 and 1,000 builders.

Each scenario replays one trace (Zipf-popular base chains plus per-build vertices, Poisson
arrivals at ``--load`` × the builders' cold capacity) through every policy; builders keep an
LRU of chain keys and run 2 builds at once. Policies:
- cache-affinity: the real Scheduler, sticky-until-saturated filter + cache-affinity scorer
  (approximate index, w2) + in-flight scorer + max-score picker;
- cache-affinity (precise): the same, fed by what builders report as cached (10 builders only:
  it reads every endpoint's report per decision);
- load-only: Scheduler with the in-flight scorer alone (ties rotate);
- round-robin: a counter; random: Scheduler with the random picker;
- sticky hashing: Scheduler with the sticky-hash picker on the build's project (3 projects per base),
  buildx's ``loadbalance=sticky`` rule.

Run: python -m bench.simulate_routing [--bases N] [--zipf S] [--load L | --rate R] (well under a minute)
"""

from __future__ import annotations

import argparse
import time

from bench._results import write_section
from envd_jupyter.scheduler import Scheduler
from envd_jupyter.scheduler._simulator import (
    TraceParams, cold_work, make_trace, round_robin_policy, scheduler_policy, simulate,
)

CACHE_ENTRIES = 200
SLOTS = 2


def affinity_config(mode: str) -> str:
    return f"""
plugins:
- {{type: cache-affinity-filter, parameters: {{threshold: 0.5, maxLoadGap: 2, mode: {mode}}}}}
- {{type: cache-affinity-scorer, parameters: {{lruCapacity: {CACHE_ENTRIES}, mode: {mode}}}}}
- {{type: in-flight-scorer}}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: cache-affinity-filter
  - {{pluginRef: cache-affinity-scorer, weight: 2}}
  - pluginRef: in-flight-scorer
"""


LOAD_ONLY = "plugins: [{type: in-flight-scorer}]\nschedulingProfiles: [{name: default, plugins: [{pluginRef: in-flight-scorer}]}]"
RANDOM = "plugins: [{type: random-picker}]\nschedulingProfiles: [{name: default, plugins: [{pluginRef: random-picker}]}]"
STICKY = "plugins: [{type: sticky-hash-picker}]\nschedulingProfiles: [{name: default, plugins: [{pluginRef: sticky-hash-picker}]}]"


def policies(builders: int):
    yield "cache-affinity", scheduler_policy(Scheduler(affinity_config("approximate"))), False
    if builders <= 50:
        yield "cache-affinity (precise)", scheduler_policy(Scheduler(affinity_config("precise"))), True
    yield "load-only", scheduler_policy(Scheduler(LOAD_ONLY)), False
    yield "round-robin", round_robin_policy(), False
    yield "random", scheduler_policy(Scheduler(RANDOM, seed=1)), False
    yield "sticky hashing", scheduler_policy(Scheduler(STICKY)), False


def scenario(builders: int, builds: int, bases: int, zipf: float, load: float, rate: float) -> list[str]:
    if not rate:
        probe = make_trace(TraceParams(builds=builds, bases=bases, zipf_s=zipf))
        rate = load * builders * SLOTS / cold_work(probe)
    trace = make_trace(TraceParams(builds=builds, bases=bases, zipf_s=zipf, arrival_rate=rate))
    rows = []
    for name, policy, report in policies(builders):
        start = time.perf_counter()
        r = simulate(trace, builders, policy, name=name, slots=SLOTS, cache_entries=CACHE_ENTRIES, report_cached=report)
        rows.append(
            f"| {builders:,} | {name} | {100 * r.hit_share:.1f}% | {r.mean_time:.0f} | {r.p95_time:.0f} | "
            f"{r.max_in_flight} | {time.perf_counter() - start:.1f} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=0, help="base chains (default: 50 at 10 builders, 400 at 1,000)")
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf skew of base popularity")
    parser.add_argument("--load", type=float, default=0.6, help="arrival rate as a share of the builders' cold capacity")
    parser.add_argument("--rate", type=float, default=0.0, help="arrival rate in builds per simulated second (overrides --load)")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    for builders, builds, bases in ((10, 3000, 50), (1000, 10000, 400)):
        rows += scenario(builders, builds, args.bases or bases, args.zipf, args.load, args.rate)
    markdown = "\n".join([
        "## Routing simulation (`bench/simulate_routing.py`)",
        "",
        f"Builds share Zipf(s={args.zipf})-popular base chains (10 vertices: image pull + execs, recorded",
        "durations) plus 3 vertices of their own; Poisson arrivals at "
        + (f"{args.rate} builds/s;" if args.rate else f"{args.load} × the builders' cold capacity;"),
        f"each builder runs {SLOTS} builds at once and keeps an LRU of {CACHE_ENTRIES} chain keys. 10 builders:",
        "3,000 builds over 50 bases; 1,000 builders: 10,000 builds over 400 bases. Build time = finish − arrival",
        "(queueing + uncached work, simulated seconds). Peers: load-only, round-robin, random, and sticky hashing",
        "of the build's project (3 projects per base) onto a ring of the builders (buildx's `loadbalance=sticky`),",
        "on the same trace.",
        "",
        "| builders | policy | work served from cache | mean build time | p95 build time | worst queue | sim wall s |",
        "|---:|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Whole run: {time.perf_counter() - started:.0f} s wall.",
    ])
    write_section("scheduler-simulation", markdown)


if __name__ == "__main__":
    main()
