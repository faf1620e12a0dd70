"""Decision latency of ``Scheduler.schedule`` at 5 / 25 / 100 / 1,000 endpoints.

Profile: 4 scorers (cache affinity, in-flight, free disk, CPU load) + max-score picker, as in
the Go endpoint picker's published benchmark; cycle records are kept (they always are).
The request (20 vertices, chain keys precomputed as the Definition→request layer would) hits
a warmed cache index. Each decision's reservation is released before the next one so every
decision sees the same state. A second run has one endpoint send a new report before every
decision, so scorers that read only the reports recompute their column each time (the worst
case for that reuse). Peer: llm-d-router's Go EPP, published 4.0 / 8.9 / 28.3 µs at
5 / 25 / 100 endpoints on an Apple M4 (not rerunnable here: no Go toolchain or network).

Run: python -m bench.bench_scheduler
"""

from __future__ import annotations

import gc
import random
import statistics
from dataclasses import replace
from time import perf_counter_ns

from bench._results import write_section
from envd_jupyter.scheduler import BuildRequest, Endpoint, Scheduler, Vertex

CONFIG = """
plugins:
- type: cache-affinity-scorer
- type: in-flight-scorer
- type: free-disk-scorer
- type: cpu-load-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: cache-affinity-scorer, weight: 3}
  - {pluginRef: in-flight-scorer, weight: 2}
  - pluginRef: free-disk-scorer
  - pluginRef: cpu-load-scorer
  - pluginRef: max-score-picker
"""
GO_EPP_US = {5: 4.0, 25: 8.9, 100: 28.3}
SIZES = (5, 25, 100, 1000)
ROUNDS = 5
BREAKDOWN = ("cache-affinity-scorer", "in-flight-scorer", "free-disk-scorer", "cpu-load-scorer",
             "max-score-picker", "single-profile-handler")


def endpoints(n: int, rng: random.Random) -> list[Endpoint]:
    return [
        Endpoint(
            f"builder-{i}", in_flight=rng.randrange(4), disk_total_bytes=100 << 30,
            disk_free_bytes=rng.randrange(10, 90) << 30, cpu_load=rng.random(), version=1, reported_at=0.0,
        )
        for i in range(n)
    ]


def requests(count: int, rng: random.Random) -> list[BuildRequest]:
    def chain(prefix: str, length: int, first_kind: str, start: int) -> list[Vertex]:
        """``length`` vertices, each on the one before; the first on position ``start - 1`` (a root at 0)."""
        return [Vertex(f"sha256:{prefix}-{k}", first_kind if k == 0 else "exec",
                       inputs=(start + k - 1,) if start + k else ()) for k in range(length)]

    bases = [chain(f"base{b}", 12, "image", 0) for b in range(8)]
    return [BuildRequest(bases[rng.randrange(8)] + chain(f"user{r}", 8, "exec", 12), id=str(r)) for r in range(count)]


def measure(n: int, decisions: int, churn: bool = False) -> tuple[list[float], Scheduler]:
    """Microseconds per decision, one sample per ``schedule`` call (and the scheduler used).

    ``churn``: before each decision (untimed) one endpoint, in turn, reports a new state.
    """
    rng = random.Random(n)
    scheduler = Scheduler(CONFIG, seed=1)
    pool = endpoints(n, rng)
    reqs = requests(decisions, rng)
    for warm in reqs[:50]:  # teach the cache index where the bases live
        scheduler.release(scheduler.schedule(warm, pool))
    samples = []
    gc.disable()
    try:
        for i, request in enumerate(reqs):
            if churn:
                old = pool[i % n]
                pool[i % n] = replace(old, cpu_load=rng.random(), version=old.version + 1)
            start = perf_counter_ns()
            result = scheduler.schedule(request, pool)
            samples.append((perf_counter_ns() - start) / 1000)
            scheduler.release(result)
    finally:
        gc.enable()
    return samples, scheduler


def plugin_means_us(scheduler: Scheduler) -> dict[str, float]:
    """Mean time per call of each plugin, read from the scheduler's own latency histograms."""
    return {name: h.sum_ns / h.count / 1000 for (_ext, _type, name), h in scheduler.metrics.plugin.items() if h.count}


def calibration_us() -> float:
    """This interpreter's speed on a plain loop (a 100-element list comprehension), best of 5."""
    values = list(range(100))
    best = float("inf")
    for _ in range(5):
        start = perf_counter_ns()
        for _ in range(2000):
            [v + 1 for v in values]
        best = min(best, (perf_counter_ns() - start) / 2000 / 1000)
    return best


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    calib = calibration_us()
    rows, breakdown = [], []
    for n in SIZES:
        # Other tenants share this machine's 2 cores: keep the least disturbed of 5 rounds.
        rounds = [measure(n, 2000 if n < 1000 else 400) for _ in range(ROUNDS)]
        samples, scheduler = min(rounds, key=lambda r: percentile(r[0], 0.5))
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        median_round = statistics.median(percentile(r[0], 0.5) for r in rounds)
        means = plugin_means_us(scheduler)
        plugins_total = sum(means.values())
        breakdown.append(
            f"| {n:,} | " + " | ".join(f"{means[name]:.1f}" for name in BREAKDOWN) +
            f" | {statistics.fmean(samples) - plugins_total:.1f} |"
        )
        churned = [measure(n, 2000 if n < 1000 else 400, churn=True)[0] for _ in range(ROUNDS)]
        churn_p50 = min(percentile(r, 0.5) for r in churned)
        go = GO_EPP_US.get(n)
        rows.append(
            f"| {n:,} | {p50:.1f} | {p99:.1f} | {statistics.fmean(samples):.1f} | {median_round:.1f} | {p50 / n:.2f} | "
            f"{churn_p50:.1f} | {f'{go:.1f}' if go else '—'} | {f'{p50 / go:.1f}×' if go else '—'} |"
        )
        print(rows[-1], flush=True)
    markdown = "\n".join([
        "## Scheduler decision latency (`bench/bench_scheduler.py`)",
        "",
        "One `Scheduler.schedule` call: snapshot, 4 scorers (cache-affinity w3, in-flight w2, free-disk, cpu-load),",
        "max-score picker, cycle record kept, metrics recorded. 20-vertex requests against a warmed cache index.",
        "Scorers that read only the reports (in-flight, free-disk, cpu-load) reuse their column while no report",
        "or reservation changed; \"a report per decision\" has one endpoint re-report before every decision, so",
        "they recompute each time (worst case). Peer: llm-d-router Go EPP, published figure, Apple M4 (4 scorers; not rerun here).",
        "",
        "| endpoints | p50 µs | p99 µs | mean µs | p50 of median round µs | p50 µs / endpoint | p50 µs, a report per decision | Go EPP µs | p50 vs Go |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "",
        "Where the time goes (best round, mean µs per decision, from the scheduler's own plugin histograms;",
        "the rest is the framework: snapshot, records, reservation, cache-index learning, metrics):",
        "",
        "| endpoints | " + " | ".join(BREAKDOWN) + " | rest |",
        "|---:|" + "---:|" * (len(BREAKDOWN) + 1),
        *breakdown,
        "",
        f"Best of {ROUNDS} rounds (the machine is shared); machine speed: a 100-element list comprehension",
        f"takes {calib:.2f} µs here. Target: p50 ≤ 50 µs at 100 endpoints, growth linear in endpoints.",
    ])
    write_section("scheduler-latency", markdown)


if __name__ == "__main__":
    main()
