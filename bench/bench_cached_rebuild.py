"""Fully cached no-op rebuild of a 20-step build: our client vs ``docker buildx build``, same daemon.

Both builds are warmed first, then timed interleaved (so daemon drift hits both alike). buildx
builds the equivalent Dockerfile (``FROM busybox`` + 20 ``RUN``) with ``--output type=cacheonly``;
ours solves the same steps from ``envd_jupyter.llb`` without exports. Ours is timed twice: a
solve on an already connected client (the notebook case) and a fresh ``python`` process that
imports, connects and solves (the like-for-like peer of a ``docker buildx`` process).
Target: ours ≤ 0.5× buildx wall time. Run: ``python -m bench.bench_cached_rebuild``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._docker import DockerCLI
from bench._results import write_section
from envd_jupyter.buildkit import connect
from envd_jupyter.fleet import project_env as daemon_env
from envd_jupyter.llb import image

SECTION = "buildkit-cached-rebuild"
STEPS = 20
FLAVOURS = ("current", "classic", "old")


def steps() -> list[str]:
    return [f"echo step {i} > /step{i:02d}" for i in range(STEPS)]


def build_state(busybox: str):
    state = image(busybox)
    for script in steps():
        state = state.run(script)
    return state


COLD_SCRIPT = """
import sys
from envd_jupyter.buildkit import connect
from bench.bench_cached_rebuild import build_state
with connect(sys.argv[1]) as client:
    result = client.solve(build_state(sys.argv[2]))
    sys.exit(0 if result.model.fully_cached else 3)
"""


class Buildx:
    def __init__(self, env: dict[str, str], socket_path: str, busybox: str, workdir: Path):
        self.docker = DockerCLI(env, socket_path)
        self.context = workdir
        lines = [f"FROM {busybox}"] + [f"RUN {script}" for script in steps()]
        (workdir / "Dockerfile").write_text("\n".join(lines) + "\n")

    def build(self) -> tuple[float, str]:
        started = time.perf_counter()
        done = self.docker.run("buildx", "build", "--progress=plain", "--output", "type=cacheonly", str(self.context),
                               timeout=600)
        elapsed = time.perf_counter() - started
        return elapsed, done.stderr


def time_cold(address: str, busybox: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", COLD_SCRIPT, address, busybox], capture_output=True, text=True,
                          timeout=600, cwd=Path(__file__).resolve().parent.parent)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"cold rebuild was not fully cached or failed: {done.stderr.strip()[-500:]}")
    return elapsed


def measure(flavour: str, env: dict[str, str], repeats: int) -> dict[str, float]:
    socket_path, busybox = env[f"ENVD_DOCKER_{flavour.upper()}"], env["ENVD_IMAGE_BUSYBOX"]
    address = f"docker+unix://{socket_path}"
    with tempfile.TemporaryDirectory(prefix="envd-bench-rebuild-") as work, connect(address) as client:
        buildx = Buildx(env, socket_path, busybox, Path(work))
        client.solve(build_state(busybox))  # warm both caches
        buildx.build()
        warm, cold, theirs = [], [], []
        for _ in range(repeats):
            elapsed, log = buildx.build()
            if log.count(" CACHED") < STEPS:
                raise RuntimeError("buildx rebuild was not fully cached")
            theirs.append(elapsed)
            started = time.perf_counter()
            result = client.solve(build_state(busybox))
            warm.append(time.perf_counter() - started)
            if not result.model.fully_cached:
                raise RuntimeError("our rebuild was not fully cached")
            cold.append(time_cold(address, busybox))
    return {"buildx": statistics.median(theirs), "warm": statistics.median(warm), "cold": statistics.median(cold)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--flavours", nargs="+", default=list(FLAVOURS), choices=FLAVOURS)
    args = parser.parse_args()
    env = daemon_env()
    load_before = os.getloadavg()[0]
    rows = []
    for flavour in args.flavours:
        figures = measure(flavour, env, args.repeats)
        rows.append(
            f"| {flavour} | {figures['buildx'] * 1000:.0f} | {figures['warm'] * 1000:.0f} "
            f"| {figures['warm'] / figures['buildx']:.2f}× | {figures['cold'] * 1000:.0f} "
            f"| {figures['cold'] / figures['buildx']:.2f}× |")
        print(rows[-1], flush=True)
    markdown = "\n".join([
        f"## Fully cached rebuild, {STEPS} RUN steps (`bench/bench_cached_rebuild.py`)",
        "",
        "Median wall time of a no-op rebuild after warming, interleaved, "
        f"{args.repeats} runs each. Peer: `docker buildx build --output type=cacheonly` (buildx 0.13.1) of the "
        "equivalent Dockerfile on the same dockerd. *warm*: `client.solve(state)` on a connected client "
        "(marshal + caps check + session + solve + status). *cold*: a new `python` process that imports, "
        "connects and solves (the like-for-like peer of a buildx process). Target ≤ 0.5× buildx.",
        "",
        "| daemon | buildx ms | ours warm ms | warm / buildx | ours cold process ms | cold / buildx |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"1-minute load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after "
        "(the machine is shared; interleaving keeps the ratios fair, absolute times drift).",
    ])
    write_section(SECTION, markdown)


if __name__ == "__main__":
    main()
