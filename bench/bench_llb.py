"""LLB marshal speed: envd_jupyter.llb vs Go's client/llb on the same graph shapes.

Graphs (as in issue 3): a linear chain of N ``run``s, each with its own env var (an
env for that exec only, like Go's ``Run(AddEnv(...))``), N = 1,000 and 10,000; and
5,000 parallel branches (``run`` + ``mkdir`` each, 10,003 ops with the base image,
merge and terminal op) merged into one State. Each repetition builds a fresh graph, so
the per-op memo never helps; "marshal" is ``State.marshal()`` (digests and op bytes,
what Go's ``State.Marshal`` returns) and "+bytes" adds ``Definition.to_bytes()``.
Go cannot run on this machine; its figures are the ones measured on this machine kind
(/work/shared/ENVIRONMENT.md): Go client/llb v0.26.3, 94 ms / 11.3 s / 182 ms.
Targets: chain 10,000 <= 0.5 s with <= 11x time for 10x ops; wide 5,000 <= 0.2 s.

Run: python -m bench.bench_llb [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

from bench._results import write_section
from envd_jupyter import llb

SECTION = "llb-marshal"
GO_PEER = "Go client/llb v0.26.3, measured on this machine kind"
GO_SECONDS = {"chain 1,000": 0.094, "chain 10,000": 11.3, "wide 5,000": 0.182}
TARGETS = {"chain 10,000": 0.5, "wide 5,000": 0.2}


def chain(n: int) -> llb.State:
    state = llb.image("busybox")
    for i in range(n):
        state = state.run(["sh", "-c", f"echo {i} >> /log"], env={f"STEP_{i}": str(i)})
    return state


def wide(n: int) -> llb.State:
    base = llb.image("busybox")
    return llb.merge([base.run(["sh", "-c", f"echo {i} > /f{i}"]).mkdir(f"/d{i}") for i in range(n)])


def measure(build, n: int, repeats: int) -> dict:
    builds, marshals, cpus, totals, ops = [], [], [], [], 0
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        state = build(n)
        t1 = time.perf_counter()
        c1 = time.process_time()
        definition = state.marshal(platform="linux/amd64")
        cpus.append(time.process_time() - c1)
        t2 = time.perf_counter()
        definition.to_bytes()
        t3 = time.perf_counter()
        builds.append(t1 - t0)
        marshals.append(t2 - t1)
        totals.append(t3 - t1)
        ops = len(definition)
    t0 = time.perf_counter()
    state.marshal(platform="linux/amd64")
    again = time.perf_counter() - t0
    return {"build": statistics.median(builds), "marshal": statistics.median(marshals), "cpu": statistics.median(cpus),
            "marshal_min": min(marshals), "cpu_min": min(cpus), "all_min": min(b + t for b, t in zip(builds, totals)),
            "bytes": statistics.median(totals), "again": again, "ops": ops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cases = {"chain 1,000": (chain, 1000), "chain 10,000": (chain, 10000), "wide 5,000": (wide, 5000)}
    # the 1,000 chain takes milliseconds: more repeats keep the scaling ratio out of the noise
    results = {name: measure(fn, n, args.repeats * (4 if n == 1000 else 1)) for name, (fn, n) in cases.items()}
    rows = []
    for name, r in results.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else (" ✅" if r["marshal"] <= target else " ❌") + f" (≤ {target} s)"
        rows.append(
            f"| {name} | {r['ops']:,} | {r['build'] * 1000:.0f} | {r['marshal'] * 1000:.0f}{verdict} | "
            f"{r['cpu'] * 1000:.0f} | "
            f"{r['bytes'] * 1000:.0f} | {r['again'] * 1000:.0f} | {GO_SECONDS[name] * 1000:.0f} | "
            f"{GO_SECONDS[name] / r['marshal']:.1f}× |")
    big, small = results["chain 10,000"], results["chain 1,000"]
    ratio, cpu_ratio = big["marshal_min"] / small["marshal_min"], big["cpu_min"] / small["cpu_min"]
    load = os.getloadavg()[0]
    ratio_all = big["all_min"] / small["all_min"]
    markdown = "\n".join([
        "## LLB marshal (`python -m bench.bench_llb`)",
        "",
        f"Median of {args.repeats} runs ({args.repeats * 4} for chain 1,000), each on a freshly built graph, milliseconds. Peer: **{GO_PEER}** "
        "(Go cannot run here; figures from /work/shared/ENVIRONMENT.md). \"marshal\" = `State.marshal()` "
        "(what Go's `State.Marshal` does), \"+bytes\" adds `Definition.to_bytes()`, \"re-marshal\" is a "
        "second marshal of the same graph (per-op memo).",
        "",
        "| graph | ops | build | marshal | marshal CPU | marshal+bytes | re-marshal | Go marshal | Go ÷ ours |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Scaling, chain 1,000 → 10,000 (10× ops), fastest run of each (noise only adds time): "
        f"marshal {ratio:.1f}× wall time, {cpu_ratio:.1f}× CPU time, "
        f"build+marshal+bytes "
        f"{ratio_all:.1f}× (target ≤ 11×; Go: {GO_SECONDS['chain 10,000'] / GO_SECONDS['chain 1,000']:.0f}×, "
        "quadratic). Load average during the run: "
        f"{load:.1f} on {os.cpu_count()} cores (other work on the machine inflates wall times; CPU time less so).",
    ])
    print(markdown)
    write_section(SECTION, markdown)


if __name__ == "__main__":
    main()
