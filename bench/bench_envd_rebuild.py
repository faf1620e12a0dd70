"""Rebuild after changing one pip package: envd staged graph vs the equivalent sequential Dockerfile.

Both scenarios have the issue's shape: 3 apt packages, 8 pip packages in 3 groups, 2 user steps,
on the local bookworm+python base, pip packages from a loopback index (network host).

* ``tiny``: all 8 pip packages are generated wheels (optionally with an incompressible payload).
  Equal, cheap groups: the honest worst case for the staged graph.
* ``torch``: the ML shape envd #1285/#1252 are about: group 2 holds the real torch CPU wheel
  (from /opt/wheels) next to two small packages; groups 1 and 3 stay small. torch's dependencies
  are fetched once with ``pip download`` (pip's own index configuration) into a cache under /tmp
  and served from the same loopback index, so the install resolves exactly as a user's would.

Ours: ``envd_jupyter.lang`` (parallel branches joined by merge on the containerd-store dockerd),
exported as an image, timed in-process on a connected client and as a fresh ``python -c``
process (comparable with buildx's process wall time). Peer: ``docker buildx build`` (buildx
0.13.1, docker driver, same daemon) of the same steps as a sequential Dockerfile with the same
kind of cache mounts, loaded as an image. Every run uses fresh package names and a fresh apt
sources comment (cold for both); sides alternate who goes first; each run's build records are
pruned after it. Figures are medians. Targets: rebuild ≥ 5× faster than buildx; cold ratio ≤ 1.0×.
Run: ``python -m bench.bench_envd_rebuild [--scenario tiny torch] [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench._docker import DockerCLI
from bench._results import read_section, write_section
from bench.bench_cached_rebuild import daemon_env
from envd_jupyter.buildkit import connect
from envd_jupyter.lang import EnvdFunctions, Environment
from envd_jupyter.lang._build import solve_environment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lang"))
from wheelhouse import serve, write_wheel  # noqa: E402

SECTION = "envd-rebuild"
IMAGE = "envd-jupyter-bench/envd-rebuild"
REPO = Path(__file__).resolve().parent.parent
APT = ("tree", "jq", "bc")
GROUPS = ((0, 1, 2), (3, 4, 5), (6, 7))
VENV = "/opt/envd/venv"
TORCH_WHEEL = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
TORCH_PIN = "torch==2.13.0"
DEPS_CACHE = Path(tempfile.gettempdir()) / "envd-jupyter-bench-torch-deps"
MIN_FREE_GB = 15
scenario_notes: dict[str, int] = {}  # scenario label -> runs discarded (CacheLost) and replaced
MAX_RETRIES = 5  # extra fresh environments for runs discarded because of CacheLost
SETTLE = 5.0  # seconds after a prune: containerd deletes pruned snapshots asynchronously
# (label, versions for ours in-process and buildx, versions for ours as a fresh process)
STEPS = (("cold", {}, None), ("bump group 1", {0: "2.0"}, {0: "3.0"}),
         ("bump group 3", {0: "2.0", 7: "2.0"}, {0: "3.0", 7: "3.0"}))


@dataclass(frozen=True)
class Scenario:
    wheel_mb: float = 0
    torch: bool = False

    @property
    def label(self) -> str:
        return "torch in group 2" if self.torch else f"tiny, {self.wheel_mb:g} MB wheels"


def bookworm_sources() -> str:
    """The machine's own bookworm archive as a sources.list line, read from apt (no mirror written here)."""
    listing = subprocess.run(["apt-get", "indextargets", "--no-release-info", "--format",
                              "$(REPO_URI) $(RELEASE) $(TARGET_OF)"], capture_output=True, text=True, check=True)
    for line in listing.stdout.splitlines():
        uri, release, target = line.split()
        if target == "deb" and release == "bookworm":
            return f"deb {uri} bookworm main\n"
    raise SystemExit("no bookworm archive in this machine's apt sources: run scripts/buildkit-up first")


def pins(spec: dict, versions: dict[int, str]) -> list[str]:
    """The 8 requirement strings; in the torch scenario torch takes the place of package 3."""
    tag = spec["tag"]
    return [TORCH_PIN if spec["torch"] and i == 3 else f"pkg{i}_{tag}=={versions.get(i, '1.0')}" for i in range(8)]


def user_steps(tag: str) -> list[str]:
    return [f"python -c 'import pkg0_{tag} as p; print(p.VERSION)' > /report.txt", "tree --version >> /report.txt"]


def environment(spec: dict, versions: dict[int, str]) -> Environment:
    fns = EnvdFunctions(Environment(name=f"bench-{spec['tag']}"))
    fns.base(image=spec["base"])
    fns.config.apt_source(source=f"# bench {spec['tag']}\n{spec['sources']}")
    fns.config.pip_index(url=spec["index"], trust=True)
    fns.install.apt_packages(name=list(APT))
    pinned = pins(spec, versions)
    for group in GROUPS:
        fns.install.python_packages(name=[pinned[i] for i in group])
    for script in user_steps(spec["tag"]):
        fns.run([script])
    return fns.env


def dockerfile(spec: dict, versions: dict[int, str]) -> str:
    apt_mounts = ("--mount=type=cache,target=/var/cache/apt,id=bench-apt-archives,sharing=locked "
                  "--mount=type=cache,target=/var/lib/apt,id=bench-apt-lists,sharing=locked")
    pip = (f"--mount=type=cache,target=/root/.cache/pip,id=bench-pip python -m pip install "
           f"--disable-pip-version-check --index-url {spec['index']} --trusted-host 127.0.0.1")
    sources = f"# bench {spec['tag']}\\n{spec['sources'].strip()}\\n"
    pinned = pins(spec, versions)
    lines = [
        f"FROM {spec['base']}",
        f"RUN printf '{sources}' > /etc/apt/sources.list",
        f"RUN {apt_mounts} rm -f /etc/apt/apt.conf.d/docker-clean && apt-get update && "
        f"DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {' '.join(APT)}",
        f"RUN python3 -m venv {VENV}",
        f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin VIRTUAL_ENV={VENV}",
        *(f"RUN {pip} {' '.join(pinned[i] for i in group)}" for group in GROUPS),
        *(f"RUN {script}" for script in user_steps(spec["tag"])),
    ]
    return "\n".join(lines) + "\n"


class Docker(DockerCLI):
    def __init__(self, env: dict[str, str], socket_path: str, workdir: Path):
        super().__init__(env, socket_path)
        self.workdir = workdir

    def clean(self, client, tag: str) -> None:
        """Drop this run's images and build records (a torch snapshot is ~1 GB), and only those.

        The daemon is shared, so other work keeps its cache: the records pruned (by id) are those
        whose description names the run's tag and every record built on top of one of them (a
        merge or a user step does not name the tag, and would pin its parents).
        """
        listing = self.run("image", "ls", "-q", "--filter", f"reference={IMAGE}:{tag}-*", timeout=60).stdout.split()
        if listing:
            self.run("image", "rm", "-f", *sorted(set(listing)), timeout=300, check=False)
        records = client.disk_usage()
        doomed = {r.id for r in records if tag in r.description}
        while grown := {r.id for r in records if r.id not in doomed and doomed & set(r.parents)}:
            doomed |= grown
        if doomed:
            client.prune(all=True, filters=tuple(f"id=={record}" for record in sorted(doomed)), timeout=900)
        time.sleep(SETTLE)

    def build(self, text: str, image: str) -> tuple[float, bool]:
        """Seconds, and whether the apt step came from cache (read from buildx's plain progress)."""
        (self.workdir / "Dockerfile").write_text(text)
        started = time.perf_counter()
        done = self.run("buildx", "build", "--progress=plain", "--network", "host", "--allow", "network.host",
                        "--provenance=false", "-t", image, str(self.workdir), timeout=1800)
        elapsed = time.perf_counter() - started
        apt = re.search(r"^#(\d+) \[[^\]]*\] RUN .*apt-get install", done.stderr, re.M)
        return elapsed, bool(apt and re.search(rf"^#{apt.group(1)} CACHED$", done.stderr, re.M))


def solve_spec(spec: dict, versions: dict[int, str], image: str, client=None) -> bool:
    """One build of ours; whether its apt step was cached. Without ``client`` it connects itself."""
    env = environment(spec, versions)
    if client is None:
        with connect(f"docker+unix://{spec['socket']}") as fresh:
            model = solve_environment(fresh, env, image_name=image, network="host", timeout=1800).model
    else:
        model = solve_environment(client, env, image_name=image, network="host", timeout=1800).model
    return any(v.name.startswith("[envd] apt-get install") for v in model.cached())


def ours_in_process(client, spec: dict, versions: dict[int, str], image: str) -> tuple[float, bool]:
    started = time.perf_counter()
    apt_cached = solve_spec(spec, versions, image, client)
    return time.perf_counter() - started, apt_cached


def ours_fresh_process(spec: dict, versions: dict[int, str], image: str) -> tuple[float, bool]:
    code = ("import json, sys; from bench.bench_envd_rebuild import solve_spec; "
            "sys.exit(0 if solve_spec(json.loads(sys.argv[1]), "
            "{int(k): v for k, v in json.loads(sys.argv[2]).items()}, sys.argv[3]) else 3)")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, json.dumps(spec), json.dumps(versions), image],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 3):
        raise RuntimeError(f"fresh-process build failed: {done.stderr.strip()[-800:]}")
    return elapsed, done.returncode == 0


class CacheLost(Exception):
    """A rebuild re-ran the apt step, or a build lost content: other work on the shared daemon pruned mid-run."""


def one_run(client, docker: Docker, spec: dict, ours_first: bool) -> dict[str, tuple]:
    """(in-process, fresh process or None, buildx) seconds for each step of one fresh environment."""
    figures = {}
    for step, (label, versions, process_versions) in enumerate(STEPS):
        # a new image name per build: re-tagging a name makes dockerd delete the replaced image
        # while the next export unpacks, and on the containerd store that races ("not found")
        image = f"{IMAGE}:{spec['tag']}-{step}"
        sides = ["ours", "process", "buildx"] if ours_first else ["buildx", "process", "ours"]
        times: dict[str, float | None] = {"process": None}
        for side in sides:
            if side == "process" and process_versions is None:
                continue
            try:
                if side == "ours":
                    times[side], apt_cached = ours_in_process(client, spec, versions, image + "-ours")
                elif side == "process":
                    times[side], apt_cached = ours_fresh_process(spec, process_versions, image + "-process")
                else:
                    times[side], apt_cached = docker.build(dockerfile(spec, versions), image + "-buildx")
            except Exception as failed:  # content removed under the build by other work on the daemon
                if str(failed).rstrip().endswith("not found"):
                    raise CacheLost(f"{side} failed on '{label}': {str(failed)[-120:]}") from None
                raise
            if process_versions is not None and not apt_cached:
                raise CacheLost(f"{side} re-ran apt on '{label}'")
        figures[label] = (times["ours"], times["process"], times["buildx"])
    return figures


def torch_wheels() -> list[Path]:
    """torch and its dependencies as wheels for the image's Python (3.11, glibc 2.36, x86_64)."""
    if not TORCH_WHEEL.is_file():
        raise SystemExit(f"{TORCH_WHEEL} is missing: the torch scenario needs the CPU wheel there")
    DEPS_CACHE.mkdir(parents=True, exist_ok=True)
    platforms = [f"--platform={p}" for p in ("manylinux_2_36_x86_64", "manylinux_2_28_x86_64",
                                              "manylinux2014_x86_64", "linux_x86_64")]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--python-version=3.11",
                    "--implementation=cp", *platforms, "--dest", str(DEPS_CACHE), str(TORCH_WHEEL)],
                   check=True, timeout=900)
    return sorted(DEPS_CACHE.glob("*.whl"))


def link_into_index(root: Path, wheels: list[Path]) -> None:
    for wheel in wheels:
        project = re.sub(r"[-_.]+", "-", wheel.name.split("-", 1)[0]).lower()
        (root / "simple" / project).mkdir(parents=True, exist_ok=True)
        (root / "simple" / project / wheel.name).symlink_to(wheel)


def free_gb() -> float:
    return shutil.disk_usage("/").free / 1e9


def write_run_wheels(root: Path, tag: str, wheel_mb: float) -> None:
    """One run's wheels: every package at 1.0, plus the versions STEPS bump it to."""
    versions = {i: {"1.0"} for i in range(8)}
    for _, *bumps in STEPS:
        for bump in filter(None, bumps):
            for i, version in bump.items():
                versions[i].add(version)
    for i, wanted in versions.items():
        for version in sorted(wanted):
            write_wheel(root, f"pkg{i}_{tag}", version, int(wheel_mb * 1e6))


def measure(client, env: dict, socket_path: str, scenario: Scenario, runs: int) -> tuple[dict[str, tuple], int]:
    """Median seconds (in-process, fresh process, buildx) per step over ``runs`` fresh environments; runs kept."""
    results: dict[str, list[tuple]] = {}
    with tempfile.TemporaryDirectory(prefix="envd-bench-") as work:
        root = Path(work) / "wheels"
        root.mkdir()
        tags = [uuid.uuid4().hex[:8] for _ in range(runs + MAX_RETRIES)]
        if scenario.torch:
            link_into_index(root, torch_wheels())
        (Path(work) / "ctx").mkdir()
        docker = Docker(env, socket_path, Path(work) / "ctx")
        sources = bookworm_sources()
        with serve(root) as index:
            done = 0
            for tag in tags:
                if done == runs:
                    break
                if free_gb() < MIN_FREE_GB:
                    raise SystemExit(f"only {free_gb():.0f} GB free on /: stopping before run {done}")
                write_run_wheels(root, tag, scenario.wheel_mb)  # served live: the index lists the directory
                spec = {"tag": tag, "torch": scenario.torch, "base": env["ENVD_IMAGE_PYTHON"], "index": index,
                        "sources": sources, "socket": socket_path}
                try:
                    figures = one_run(client, docker, spec, ours_first=done % 2 == 0)
                except CacheLost as lost:
                    scenario_notes[scenario.label] = scenario_notes.get(scenario.label, 0) + 1
                    print(f"{scenario.label}: discarded a run, {lost}", flush=True)
                    continue
                finally:
                    docker.clean(client, tag)
                for label, triple in figures.items():
                    results.setdefault(label, []).append(triple)
                    shown = " ".join("-" if t is None else f"{t:.2f}s" for t in triple)
                    print(f"{scenario.label} run {done} {label}: ours/process/buildx {shown} "
                          f"({free_gb():.0f} GB free)", flush=True)
                done += 1
    if not results:
        raise SystemExit(f"{scenario.label}: every run lost its cache to a prune on the shared daemon")
    medians = {label: tuple(None if triples[0][k] is None else statistics.median(t[k] for t in triples)
                            for k in range(3)) for label, triples in results.items()}
    return medians, len(results["cold"])


def speed(theirs: float, mine: float) -> str:
    return f"{theirs / mine:.1f}× faster" if theirs >= mine else f"{mine / theirs:.1f}× slower"


def rows(scenario: Scenario, medians: dict[str, tuple], kept: int, minutes: float) -> list[str]:
    out = []
    for label, (mine, process, theirs) in medians.items():
        runs = f"{kept} ({minutes:.0f} min)" if label == "cold" else ""
        if label == "cold":
            out.append(f"| {scenario.label} | {label} | {mine:.2f} | – | {theirs:.2f} | "
                       f"ratio {mine / theirs:.2f}× | – | {runs} |")
        else:
            out.append(f"| {scenario.label} | {label} | {mine:.2f} | {process:.2f} | {theirs:.2f} | "
                       f"**{speed(theirs, mine)}** | {speed(theirs, process)} | {runs} |")
    return out


def previous_rows(keep: set[str]) -> list[str]:
    """Table rows of scenarios not re-measured this time, so one scenario can be rerun alone."""
    return [line for line in read_section(SECTION).splitlines() if line.startswith("| ") and line.split("|")[1].strip() in keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", nargs="+", choices=("tiny", "torch"), default=["tiny", "torch"])
    parser.add_argument("--runs", type=int, default=3, help="fresh environments per scenario (median)")
    parser.add_argument("--wheel-mb", type=float, nargs="+", default=[0, 8],
                        help="tiny scenario: payload per wheel; 0 = tiny wheels (pip start-up dominates)")
    parser.add_argument("--socket", help="dockerd socket (default: the shared containerd-store daemon, "
                        "ENVD_DOCKER_CURRENT); a private dockerd keeps other work's prunes out of the runs. "
                        "It needs ENVD_IMAGE_PYTHON imported and the containerd image store.")
    args = parser.parse_args()
    scenarios = [Scenario(size) for size in args.wheel_mb] if "tiny" in args.scenario else []
    scenarios += [Scenario(torch=True)] if "torch" in args.scenario else []
    env = daemon_env()
    started, table = time.monotonic(), []
    socket_path = args.socket or env["ENVD_DOCKER_CURRENT"]
    with connect(f"docker+unix://{socket_path}") as client:
        for scenario in scenarios:
            scenario_started = time.monotonic()
            medians, kept = measure(client, env, socket_path, scenario, args.runs)
            table += rows(scenario, medians, kept, (time.monotonic() - scenario_started) / 60)
    minutes = (time.monotonic() - started) / 60
    measured = {s.label for s in scenarios}
    known = {Scenario(torch=True).label} | {Scenario(size).label for size in parser.get_default("wheel_mb")}
    old = previous_rows(known - measured)
    table = sorted(old + table, key=lambda row: row.startswith("| torch"))
    write_section(SECTION, "\n".join([
        "## envd environment rebuild after one pip change (`bench/bench_envd_rebuild.py`)",
        "",
        "3 apt packages, 8 pip packages in 3 groups, 2 user steps; image exported on both sides; containerd-store "
        f"dockerd 26.1.5 ({'a private instance started for the bench' if args.socket else 'the shared one'}); "
        "medians over the runs kept (last column, with the scenario's wall time), each with fresh "
        "package names; each run's build records pruned "
        "after it. *cold*: no build step cached (apt/pip cache mounts warm after the first run, for both sides; "
        "target ours/buildx ≤ 1.0). *bump group 1*: one package of the first pip group "
        "changes; *bump group 3*: then one of the last group (target ≥ 5× faster). Peer: `docker buildx build` of "
        "the same steps as a sequential Dockerfile with the same cache mounts (a process: compare it with ours as a "
        "fresh `python -c` process; the in-process figure is a connected client, as in a notebook).",
        "",
        "Two scenarios. **tiny**: 8 generated wheels in equal groups, the honest worst case: a sequential build "
        "re-runs at most the 3 pip groups after the change, ours 1 branch plus a merge, and both re-run the 2 user "
        "steps and the export, so the speed-up is bounded near 3× and the 5× target is **not** met there. **torch**: "
        "the ML shape of envd #1285/#1252: group 2 holds the real torch 2.13.0 CPU wheel (+ its 9 dependencies, "
        "fetched with `pip download` and served from the loopback index), groups 1 and 3 are small. A sequential "
        "Dockerfile re-installs torch after every edit of group 1 (and re-exports its layer); ours re-runs only "
        "group 1, and its layer order (docs/envd-language.md, *Layer order*) keeps torch's layer below the edited "
        "group, so dockerd's store does not unpack torch again and the merge reuses base → venv → torch without "
        "copying. Bumping group 3 (below torch in both) is the control: nothing heavy re-runs on either side, "
        "and ours pays its merge, a gateway round trip and the venv check, so it is slower there.",
        "",
        "| scenario | build | ours in-process s | ours fresh process s | buildx s | in-process vs buildx "
        "| process vs buildx | runs |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *table,
        "",
        f"This run: {', '.join(s.label for s in scenarios)}, {minutes:.1f} min"
        + "".join(f"; {label}: {n} run(s) discarded and replaced (other work on the shared daemon removed cache "
                  "or content mid-run)"
                  for label, n in scenario_notes.items()) + ".",
    ]))


if __name__ == "__main__":
    main()
