"""Routing real builds across three equal daemons: cache affinity vs round-robin, random and sticky hashing.

One trace: 30 builds over 6 environments (each 5 times, shuffled with a fixed seed) that share 2 base
chains (environment e builds on base e mod 2); 3 builds in flight at a time; the daemons are
scripts/fleet-up's fleet1..3 (dockerd 26, containerd store, the same base image). Work is `sleep` in
each step, so it costs wall time, not the shared CPU: a base chain is 4 steps × 2 s (its system packages),
an environment adds 2 steps × 1 s (its own packages): a cold build is 10 s of work, a build on a warm
base 2 s, a repeat none; the client's own cost per build (about a second here) comes on top.

Every policy goes through ``Fleet.solve`` (same failover, same bookkeeping); only the scheduler config
differs: the fleet's default profiles (cache affinity ×3 + in-flight ×2 + …), a round-robin picker, the
random picker, and sticky hashing on the build's key (buildx's kubernetes driver with
``loadbalance=sticky``: hash(key) mod the live nodes, so a node going away remaps keys), and once more
cache affinity with the shared registry cache. Each policy starts cold (its steps carry their own salt).
The second run kills (SIGKILL) the daemon that served the most builds so far once a third of the
builds have finished; its in-flight builds fail over; scripts/fleet-up restarts it after the run.

Run: ``python -m bench.bench_fleet_routing`` (about 10 minutes; needs root for scripts/fleet-up).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench._results import write_section
from envd_jupyter import llb
from envd_jupyter.fleet import Fleet, project_builders, project_env
from envd_jupyter.fleet._profiles import DEFAULT_CONFIG
from envd_jupyter.scheduler import Pick, Picker, register

SECTION = "fleet-routing"
BUILDS, ENVIRONMENTS, BASES, IN_FLIGHT = 30, 6, 2, 3
BASE_STEPS, BASE_SECONDS, ENV_STEPS, ENV_SECONDS = 4, 2.0, 2, 1.0
ROOT = Path(__file__).resolve().parent.parent


@register("round-robin-picker")
class RoundRobinPicker(Picker):
    """The next live endpoint in name order (bench-only baseline)."""

    def __init__(self, name, params, handle):
        super().__init__(name, params, handle)
        self._next = 0

    def pick(self, cycle, endpoints, totals):
        order = sorted(range(len(endpoints)), key=lambda i: endpoints[i].name)
        chosen = order[self._next % len(order)]
        self._next += 1
        return Pick([chosen], order)


@register("sticky-hash-picker")
class StickyHashPicker(Picker):
    """hash(request.attributes["key"]) mod the live endpoints in name order (buildx's loadbalance=sticky)."""

    def pick(self, cycle, endpoints, totals):
        order = sorted(range(len(endpoints)), key=lambda i: endpoints[i].name)
        digest = hashlib.sha256(cycle.request.attributes.get("key", "").encode()).digest()
        return Pick([order[int.from_bytes(digest[:8], "big") % len(order)]], order)


def only_picker(picker: str) -> str:
    return (f"plugins: [{{type: healthy-filter}}, {{type: {picker}}}]\n"
            f"schedulingProfiles: [{{name: build, plugins: [{{pluginRef: healthy-filter}}, {{pluginRef: {picker}}}]}}]\n")


POLICIES = {  # name -> (scheduler config, shared registry cache)
    "cache-affinity": (DEFAULT_CONFIG, False),
    "round-robin": (only_picker("round-robin-picker"), False),
    "random": (only_picker("random-picker"), False),
    "sticky hashing": (only_picker("sticky-hash-picker"), False),
    "cache-affinity + registry cache": (DEFAULT_CONFIG, True),
}


def environment(env: int, salt: str):
    state = llb.image(project_env()["ENVD_IMAGE_BUSYBOX"])
    for step in range(BASE_STEPS):
        state = state.run(f"sleep {BASE_SECONDS}; echo base{env % BASES} {step} {salt} > /b{step}",
                          name=f"base{env % BASES} step {step}")
    for step in range(ENV_STEPS):
        state = state.run(f"sleep {ENV_SECONDS}; echo env{env} {step} {salt} > /e{step}", name=f"env{env} step {step}")
    return state


def step_work(name: str) -> float:
    return BASE_SECONDS if name.startswith("base") else ENV_SECONDS if name.startswith("env") else 0.0


@dataclass
class Run:
    policy: str
    kill: bool
    wall: float = 0.0
    cached_work: float = 0.0
    total_work: float = 0.0
    per_builder: Counter = None
    failovers: int = 0
    killed: str = ""
    lines: list = field(default_factory=list)  # the failover lines, as the fleet said them

    @property
    def cache_share(self) -> float:
        return self.cached_work / self.total_work if self.total_work else 0.0


def fleet_up() -> dict[str, str]:
    subprocess.run([str(ROOT / "scripts" / "fleet-up")], check=True, capture_output=True, timeout=300)
    return project_builders(which="fleet")


def run_policy(policy: str, trace: list[int], kill: bool) -> Run:
    config, shared = POLICIES[policy]
    builders = fleet_up()
    salt = uuid.uuid4().hex[:12]
    registry = project_env()["ENVD_REGISTRY"] if shared else None
    run = Run(policy, kill, per_builder=Counter())
    lock, finished = threading.Lock(), [0]
    with Fleet(builders, config=config, registry_cache=registry, seed=1, on_failover=run.lines.append) as fleet:
        fleet.builders()  # the first reports, before the clock starts

        def build(env: int) -> None:
            result = fleet.solve(environment(env, salt), attributes={"key": f"env{env}"}, name=f"bench env{env}")
            cached = {v.name for v in result.model.cached()}
            with lock:
                run.per_builder[result.builder] += 1
                run.failovers += len(result.failovers)
                for step in [*(f"base{env % BASES} step {i}" for i in range(BASE_STEPS)),
                             *(f"env{env} step {i}" for i in range(ENV_STEPS))]:
                    run.total_work += step_work(step)
                    run.cached_work += step_work(step) if step in cached else 0.0
                finished[0] += 1
                if kill and finished[0] == BUILDS // 3 and not run.killed:
                    run.killed = run.per_builder.most_common(1)[0][0]
                    pid = int((Path(project_env()["ENVD_JUPYTER_STATE"]) / "daemons" / run.killed / "docker.pid").read_text())
                    os.kill(pid, signal.SIGKILL)

        started = time.monotonic()
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            for future in [pool.submit(build, env) for env in trace]:
                future.result(timeout=900)
        run.wall = time.monotonic() - started
    if kill:
        fleet_up()
    return run


def table(runs: list[Run]) -> str:
    rows = ["| run | policy | total wall time | work served from cache | builds per daemon | failovers |",
            "|---|---|---:|---:|---|---:|"]
    for run in runs:
        spread = ", ".join(f"{name} {count}" for name, count in sorted(run.per_builder.items()))
        label = f"{run.killed} killed after {BUILDS // 3}" if run.kill else "all up"
        rows.append(f"| {label} | {run.policy} | {run.wall:.1f} s | {100 * run.cache_share:.0f}% | {spread} | "
                    f"{run.failovers} |")
    return "\n".join(rows)


def verdict(runs: list[Run]) -> list[str]:
    lines = []
    for kill in (False, True):
        by = {run.policy: run for run in runs if run.kill == kill}
        affinity, rr, sticky = by["cache-affinity"], by["round-robin"], by["sticky hashing"]
        what = "with a daemon killed" if kill else "all daemons up"
        lines.append(f"- {what}: cache affinity {rr.wall / affinity.wall:.2f}× less time than round-robin "
                     f"({'✅' if rr.wall >= 2 * affinity.wall else '❌'} target ≥ 2×), "
                     f"{sticky.wall / affinity.wall:.2f}× less than sticky hashing "
                     f"({'✅' if sticky.wall > affinity.wall else '❌'} target > 1×)")
    return lines


def main() -> None:
    trace = [env for env in range(ENVIRONMENTS) for _ in range(BUILDS // ENVIRONMENTS)]
    random.Random(0).shuffle(trace)
    runs = []
    for kill in (False, True):
        for policy in POLICIES:
            run = run_policy(policy, trace, kill)
            print(table([run]).splitlines()[-1], *(f"    {line}" for line in run.lines), sep="\n", flush=True)
            runs.append(run)
    body = "\n".join([
        "## Fleet: 30 real builds on three daemons, by routing policy (`bench/bench_fleet_routing.py`)",
        "",
        f"{BUILDS} builds over {ENVIRONMENTS} environments sharing {BASES} base chains ({BASE_STEPS} × "
        f"{BASE_SECONDS:g} s + {ENV_STEPS} × {ENV_SECONDS:g} s of `sleep` per cold build), {IN_FLIGHT} in flight, "
        "the same trace for every policy, each policy from cold caches, all through `Fleet.solve`; the second "
        f"run SIGKILLs the busiest daemon once {BUILDS // 3} builds have finished (its builds fail over).",
        "",
        table(runs),
        "",
        *verdict(runs),
    ])
    write_section(SECTION, body)
    print(body)


if __name__ == "__main__":
    main()
