"""Context upload: our fsutil DiffCopy sender vs ``docker buildx build`` on the same dockerd.

Both sides build the same thing: the context (20,000 small files + 200 MB in 20 large files)
copied to ``/ctx`` of an empty image, no export (buildx: ``--output type=cacheonly``; ours: a solve
without exports). Throughput is context bytes / wall time. Then one file is touched and ours
re-uploads: BuildKit should request that file alone, and ``LocalDir.transfers`` shows exactly which
bytes went out.

Every run is cold without pruning between runs: BuildKit keeps the last copy of a local source per
shared key and then asks only for changed files, so each run gets a fresh key (buildx derives its
key from the context path: the context is moved to a new path; ours: a new local name) and a
changed nonce file (the COPY cannot be a cache hit). The daemon's bytes read per run
(``/proc/<dockerd>/io``: ~2x the context, the session stream plus the COPY; ~1x when incremental)
and the files BuildKit asked us for show that every run of both clients was a full transfer.
Pruning before each run (the earlier method) left the daemon deleting the last run's 40,000 files
in the background during the next one: runs took twice as long and swung 4-12 s. The cache is
pruned once before and once after the whole run. ``sync`` before each run keeps the previous
run's dirty pages from being written back during it. CPU seconds of our process, the docker CLI
(+ buildx plugin) and dockerd show who burns the 2 cores.

Ours runs twice per round: with the session served by ``session.h2server.H2Server`` (``Session``'s
default) and by ``session.grpcio_server.GrpcioServer`` (set as ``transport.DEFAULT_SERVER_FACTORY`` for
the run), to show what the server choice costs. H2Server serves dockerd's hijacked ``/session`` socket
itself; grpcio's server only listens, so its stream is piped through the client's socket pump.

Run: python -m bench.bench_context_upload [--flavour current] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench._docker import DockerCLI
from bench._results import write_section
from envd_jupyter.buildkit import connect
from envd_jupyter.fleet import project_env as daemon_env
from envd_jupyter.buildkit._session import transport
from envd_jupyter.buildkit._session.filesync import LocalDir
from envd_jupyter.buildkit._session.grpcio_server import GrpcioServer
from envd_jupyter.buildkit._session.h2server import H2Server
from envd_jupyter.llb._source import local, scratch

SMALL_FILES = 20_000
SMALL_SIZE = 512
BIG_FILES = 20
BIG_SIZE = 10 * 1024 * 1024
SECTION = "buildkit-context-upload"
NONCE = ".bench-nonce"
IDLE_CPU = 0.05  # before a run, wait until dockerd and its children use less than this share of a core...
IDLE_FOR = 1.0  # ...for this many seconds (deletions and writes of earlier runs finish in the background)
IDLE_AT_MOST = 30.0


def make_context(root: Path) -> int:
    """Write the context; returns its byte count."""
    total = 0
    for i in range(SMALL_FILES):
        directory = root / f"src{i % 200:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        data = (f"file {i}\n".encode() * (SMALL_SIZE // 8))[:SMALL_SIZE]
        (directory / f"f{i:05d}.txt").write_bytes(data)
        total += len(data)
    blobs = root / "blobs"
    blobs.mkdir()
    for i in range(BIG_FILES):
        (blobs / f"blob{i:02d}.bin").write_bytes(os.urandom(BIG_SIZE))
        total += BIG_SIZE
    return total


class Docker(DockerCLI):
    def prune(self, daemon: "Daemon") -> None:
        """Empty the build cache and let the daemon's background deletion finish."""
        self.run("builder", "prune", "-af")
        daemon.wait_idle()


class Daemon:
    """dockerd's CPU seconds and bytes read, from /proc (its pid file sits beside its socket)."""

    def __init__(self, socket_path: str):
        self.pid = int(Path(socket_path).with_name("docker.pid").read_text())

    @staticmethod
    def cpu(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sample(self) -> tuple[float, int]:
        io = dict(line.split(": ") for line in Path(f"/proc/{self.pid}/io").read_text().splitlines())
        return self.cpu(self.pid), int(io["rchar"])

    def family_cpu(self) -> float:
        """CPU seconds of dockerd and its children (containerd, shims)."""
        children = " ".join(path.read_text() for path in Path(f"/proc/{self.pid}/task").glob("*/children"))
        return sum(self.cpu(pid) for pid in [self.pid, *map(int, children.split())])

    def wait_idle(self) -> None:
        deadline = time.monotonic() + IDLE_AT_MOST
        before = self.family_cpu()
        while time.monotonic() < deadline:
            time.sleep(IDLE_FOR)
            now = self.family_cpu()
            if now - before < IDLE_CPU * IDLE_FOR:
                return
            before = now


@dataclass
class Run:
    wall: float
    client_cpu: float  # our whole process, or the docker CLI and its buildx plugin
    daemon_cpu: float
    daemon_read: int


def measure(daemon: Daemon, solve, client_cpu) -> Run:
    cpu0, (daemon_cpu0, read0) = client_cpu(), daemon.sample()
    started = time.perf_counter()
    solve()
    wall = time.perf_counter() - started
    daemon_cpu, read = daemon.sample()
    return Run(wall, client_cpu() - cpu0, daemon_cpu - daemon_cpu0, read - read0)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fresh_context(context: Path, run_no: int, daemon: Daemon) -> Path:
    """Move the context to a new path and change its nonce, then wait for a quiet daemon and disk."""
    moved = context.with_name(f"ctx{run_no}")
    context.rename(moved)
    (moved / NONCE).write_text(f"{run_no} {time.time_ns()}\n")
    daemon.wait_idle()
    os.sync()
    return moved


def time_buildx(docker: Docker, daemon: Daemon, context: Path, dockerfile_dir: Path) -> Run:
    return measure(daemon, lambda: docker.run("buildx", "build", "--progress=quiet", "--output", "type=cacheonly",
                                              "-f", str(dockerfile_dir / "Dockerfile"), str(context)), children_cpu)


def time_ours(client, daemon: Daemon, source: LocalDir, name: str) -> Run:
    state = scratch().copy(local(name), "/", "/ctx")
    return measure(daemon, lambda: client.solve(state, local_dirs={name: source}), time.process_time)


@contextmanager
def session_server(kind: str):
    """Serve sessions with H2Server or grpcio's server for the duration of the block."""
    original = transport.DEFAULT_SERVER_FACTORY
    transport.DEFAULT_SERVER_FACTORY = H2Server if kind == "h2" else GrpcioServer
    try:
        yield
    finally:
        transport.DEFAULT_SERVER_FACTORY = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavour", default="current", choices=["current", "classic", "old"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    env = daemon_env()
    socket_path = env[f"ENVD_DOCKER_{args.flavour.upper()}"]
    docker = Docker(env, socket_path)
    daemon = Daemon(socket_path)
    work = Path(tempfile.mkdtemp(prefix="envd-bench-upload-", dir="/tmp"))
    try:
        context, dockerfile_dir = work / "ctx", work / "df"
        context.mkdir()
        dockerfile_dir.mkdir()
        (dockerfile_dir / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx\n")
        size = make_context(context)
        client = connect(f"docker+unix://{socket_path}")
        runs: dict[str, list[Run]] = {"h2": [], "grpcio": [], "buildx": []}
        full_transfers = True
        docker.prune(daemon)
        load_before = os.getloadavg()[0]
        run_no = 0
        for round_no in range(args.repeats):  # interleaved, order rotated, so drift and position hit all alike
            for kind in list(runs)[round_no % 3:] + list(runs)[:round_no % 3]:
                run_no += 1
                context = fresh_context(context, run_no, daemon)
                if kind == "buildx":
                    runs[kind].append(time_buildx(docker, daemon, context, dockerfile_dir))
                    continue
                source, name = LocalDir(context), f"ctx{run_no}"
                with session_server(kind):
                    runs[kind].append(time_ours(client, daemon, source, name))
                full_transfers &= source.transfers[-1].files_requested == SMALL_FILES + BIG_FILES + 1
                if kind == "h2":
                    cold, last_h2_name = source.transfers[-1], name

        touched = context / "src007" / "f00007.txt"
        with open(touched, "ab") as handle:
            handle.write(b"touched\n")
        source = LocalDir(context)
        with session_server("h2"):
            reupload_s = time_ours(client, daemon, source, last_h2_name).wall
        again = source.transfers[-1]
        touched_bytes = touched.stat().st_size
        client.close()
        docker.prune(daemon)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mib = size / 2**20
    labels = {"h2": "envd-jupyter, H2Server session server, default (`local()` + copy, no export)",
              "grpcio": "envd-jupyter, GrpcioServer session server, piped (same solve)",
              "buildx": "docker buildx 0.13.1 (`COPY . /ctx`, `type=cacheonly`)"}

    def median(kind: str, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in runs[kind])

    table = "\n".join(
        f"| {labels[kind]} | {median(kind, 'wall'):.2f} | {mib / median(kind, 'wall'):.1f} | "
        f"{median(kind, 'client_cpu'):.2f} | {median(kind, 'daemon_cpu'):.2f} | "
        f"{median(kind, 'daemon_read') / 2**20:.0f} | {', '.join(f'{run.wall:.2f}' for run in runs[kind])} |"
        for kind in runs)
    theirs_s = median("buildx", "wall")

    def paired(kind: str) -> float:
        return statistics.median(theirs.wall / ours.wall for theirs, ours in zip(runs["buildx"], runs[kind]))

    least_read = min(run.daemon_read for kind_runs in runs.values() for run in kind_runs)
    report = f"""## Context upload (vs docker buildx, dockerd {args.flavour})

Context: {SMALL_FILES:,} files of {SMALL_SIZE} B + {BIG_FILES} files of {BIG_SIZE // 2**20} MiB = {mib:.0f} MiB.
Same daemon; every run cold: a fresh shared key for both (new context path for buildx, new local name
for ours) and a changed nonce file, no prune between runs; before each run dockerd and containerd
idle (< {IDLE_CPU:.0%} of a core for {IDLE_FOR:.0f} s, at most {IDLE_AT_MOST:.0f} s) and `sync`;
median of {args.repeats}, interleaved with the order rotated each round.
1-minute load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after (2 shared cores: absolute times drift, ratios are fairer).

| client | wall time (s) | throughput (MiB/s) | client CPU (s) | dockerd CPU (s) | dockerd read (MiB) | runs (s) |
|---|---:|---:|---:|---:|---:|---|
{table}

Throughput ratio vs buildx (target ≥ 1.0×): H2Server (default) **{theirs_s / median("h2", "wall"):.2f}×**,
GrpcioServer **{theirs_s / median("grpcio", "wall"):.2f}×** (ratio of medians). Median of the per-round ratios
(a round's runs are seconds apart and share the machine's load): H2Server {paired("h2"):.2f}×, GrpcioServer {paired("grpcio"):.2f}×.
Full transfers: dockerd read at least {least_read / size:.2f}× the context in every run of every
client (a cold run reads it twice: the session stream, then the COPY; an incremental one about
once), and ours was asked for all {SMALL_FILES + BIG_FILES + 1:,} files (with the nonce) in {"every" if full_transfers else "NOT every"} run.
A cold upload sends {cold.files_requested:,} files, {cold.data_bytes / 2**20:.1f} MiB of file data,
about 3 gRPC messages per small file (stat, data, end-of-file).

Re-upload after appending 8 bytes to one file: {again.files_requested} file requested
({', '.join(again.requested_paths) or 'none'}), {again.data_bytes} bytes of file data sent
(the file is {touched_bytes} bytes), {reupload_s:.2f} s wall time (walk of {again.stats:,} stats + the copy step).
"""
    print(report)
    write_section(SECTION, report)


if __name__ == "__main__":
    main()
