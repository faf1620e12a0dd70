"""The JupyterLab panel: the history list with 1,000 builds, and live updates from a finished solve.

A fresh archive holds N builds (default 1,000, as kernels write them: summary, 7 steps, a 7-node
graph, one scheduling record); JupyterLab runs with the server extension and this checkout's built
panel, twice:
- "archive only": the fleet is the project's dockerd 20.10 ("old", no history API: one reported
  error), so the list is exactly the N archived builds;
- "with a busy daemon": the fleet is dockerd 26 ("current"), whose own history (every build the
  project's tests made on it) is merged in each request.
Measured:
- Server: GET /envd/api/history (first page of 50, a name filter, the last page, the largest page
  the server gives, 500), from this process over loopback: the first request of each kind, then the
  median and p95 of 20 more.
- First render in Chromium (archive only; one fresh browser per round): the panel's refresh button
  → the list redrawn with the server's answer (request + render, timed in the page), and the click on
  the panel's tab → its first row visible (the list was loaded when Lab started).
- Live update (with the busy daemon): the page waits for finished rows of L build names; this
  process solves L small builds on "current" one after another; latency = when the row showed "ok"
  in the page minus the daemon's completion time of the build (same host clock), and minus when the
  solve call returned here.
Target (issue 16): history list with 1,000 builds: server response and first render <= 1 s.

Run: python -m bench.bench_panel [--builds 1000] [--rounds 5] [--live 5]   (needs scripts/labext-build,
scripts/ui-deps, scripts/buildkit-up)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from labdriver import (ARTIFACTS, UI_DIR, LabError, LabServer, drive_panel, panel_command,  # noqa: E402
                       panel_facts, write_notebook)

from bench._results import write_section  # noqa: E402
from envd_jupyter import buildkit, fleet, history  # noqa: E402
from envd_jupyter.llb import image  # noqa: E402

SECTION = "panel-history"
BUSYBOX = "envd-jupyter/busybox:latest"
STEP_NAMES = ("image busybox", "make /app", "install tools", "fetch data", "diff", "diff", "merge")
STATUSES = ("ok", "ok", "ok", "failed", "cancelled")


def archive_entry(i: int, now: float) -> dict:
    """One build as a kernel records it (what history.Archive.add keeps)."""
    created = now - 3600 - 30 * i
    digests = [f"sha256:{i:08x}{k:056x}" for k in range(len(STEP_NAMES))]
    steps = [{"digest": d, "index": k + 1, "name": n, "inputs": [digests[0]] if k else [], "state": "done",
              "started": created + k, "completed": created + k + 0.5, "duration": 0.5, "cached": k == 0,
              "error": "", "log_bytes": 12, "statuses": [], "log_tail": [f"line {k}"]}
             for k, (d, n) in enumerate(zip(digests, STEP_NAMES))]
    graph = {"version": 1, "head": digests[-1],
             "nodes": [{"id": d, "kind": "exec", "name": n, "location": None, "attrs": {}}
                       for d, n in zip(digests, STEP_NAMES)],
             "edges": [{"source": digests[0], "target": d, "index": 0} for d in digests[1:]]}
    status = STATUSES[i % len(STATUSES)]
    return {"id": f"bench{i:06d}{uuid.uuid4().hex[:10]}", "builder": "current", "address": "",
            "notebook": f"bench-{i % 20}.ipynb", "cell_id": f"cell-{i}", "state": f"state{i % 50}",
            "name": f"bench-{i % 20}.ipynb: state{i % 50}", "created": created, "completed": created + 7,
            "status": status, "error": "exit code: 1" if status == "failed" else "",
            "total": 7, "cached": 1, "ran": 6, "steps": steps, "graph": graph,
            "scheduling": [{"candidates": ["current"], "filters": [],
                            "scores": {"current": {"total": 4.0, "scorers": {}}}, "picked": ["current"], "error": ""}]}


def fill(path: Path, count: int) -> float:
    archive = history.Archive(path)
    now = time.time()
    began = time.perf_counter()
    for i in range(count):
        archive.add(archive_entry(i, now))
    return time.perf_counter() - began


def time_get(lab: LabServer, query: str, rounds: int) -> tuple[list[float], int, int, float]:
    """Milliseconds of each GET after the first, the items in the last reply, its total, and the first's ms."""
    request = urllib.request.Request(f"{lab.url}envd/api/history?{query}",
                                     headers={"Authorization": f"token {lab.token}"})
    times, reply = [], {}
    for _ in range(rounds + 1):
        began = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as answer:
            reply = json.loads(answer.read())
        times.append((time.perf_counter() - began) * 1000)
    return times[1:], len(reply["items"]), reply["total"], times[0]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def first_renders(lab: LabServer, notebook: Path, rounds: int) -> tuple[list[dict], list[str]]:
    """Each round's page timings, and why rounds were retried: Chromium drops loads when the host's
    network changes (other daemons adding bridges: net::ERR_NETWORK_CHANGED), so a failed round is run
    once more, and said."""
    timings, retried = [], []
    for n in range(rounds):
        for attempt in (1, 2):
            try:
                facts = drive_panel(lab, notebook, screenshot=f"bench-panel-{n}", wait_for=[".envd-lab-history-row"],
                                    describe=[".envd-lab-range"], time_refresh=True)
                break
            except LabError as error:
                if attempt == 2:
                    raise
                retried.append(str(error).splitlines()[0])
        timings.append({**facts["timings"], "range": facts["selectors"][".envd-lab-range"]["shown"][0]["text"]})
    return timings, retried


def live_updates(lab: LabServer, notebook: Path, socket: str, count: int) -> tuple[list[float], list[float]]:
    """Seconds from each build's completion on the daemon, and from its solve call's return here, to its
    finished row in the page."""
    names = [f"bench-live-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    command = panel_command(lab, notebook, screenshot="bench-panel-live", watch_names=names)
    browser = subprocess.Popen(command, cwd=UI_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    returned, completed = {}, {}
    try:
        line = browser.stderr.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"panel.mjs did not get ready: {line}{browser.stderr.read()[-2000:]}")
        client = buildkit.connect(f"docker+unix://{socket}")
        try:
            refs = {}
            for name in names:
                refs[name] = client.solve(image(BUSYBOX).run(f"echo {name}", name="echo"), name=name).ref
                returned[name] = time.time()
            stdout, stderr = browser.communicate(timeout=300)
            for name, ref in refs.items():
                [record] = client.history(ref=ref)
                completed[name] = record.completed
        finally:
            client.close()
    finally:
        if browser.poll() is None:
            browser.kill()
    shown = panel_facts(lab, stdout, stderr, browser.returncode)["timings"]["rowShownAt"]
    return ([shown[name] / 1000 - completed[name] for name in names],
            [shown[name] / 1000 - returned[name] for name in names])


def lab_with(work: Path, name: str, archive_path: Path, builders: dict[str, str]) -> LabServer:
    fleet_file = work / f"fleet-{name}.yaml"
    fleet_file.write_text("builders:\n" + "".join(f"  {b}: {a}\n" for b, a in builders.items()))
    home = work / name
    (home / "root").mkdir(parents=True)
    return LabServer(home / "root", home, ARTIFACTS / f"jupyterlab-bench-panel-{name}.log",
                     env={"ENVD_JUPYTER_HISTORY": str(archive_path)}, args=[f"--EnvdServer.fleet={fleet_file}"])


def server_times(lab: LabServer, builds: int) -> dict:
    queries = {"first page (50)": "offset=0&limit=50", "name filter": "name=bench-7.ipynb&offset=0&limit=50",
               "last page": f"offset={builds - 50}&limit=50", "largest page (500)": "offset=0&limit=500"}
    return {label: time_get(lab, query, 20) for label, query in queries.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--builds", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--live", type=int, default=5)
    args = parser.parse_args()
    daemons = fleet.project_builders()
    work = Path(tempfile.mkdtemp(prefix="bench-panel-"))
    archive_path = work / "history.sqlite3"
    fill_s = fill(archive_path, args.builds)
    with lab_with(work, "archive", archive_path, {"old": daemons["old"]}) as lab:
        archive_only = server_times(lab, args.builds)
        notebook = write_notebook(lab.root_dir / "bench.ipynb", "1 + 1")
        renders, retried = first_renders(lab, notebook, args.rounds)
    with lab_with(work, "busy", archive_path, {"current": daemons["current"]}) as lab:
        busy = server_times(lab, args.builds)
        notebook = write_notebook(lab.root_dir / "bench.ipynb", "1 + 1")
        live = live_updates(lab, notebook, daemons["current"].removeprefix("docker+unix://"), args.live)
    report(args, fill_s, archive_only, busy, renders, retried, live)


def table(server: dict) -> str:
    return "\n".join(f"| {label} | {items} | {total:,} | {first:.1f} | {statistics.median(t):.1f} | {p95(t):.1f} |"
                     for label, (t, items, total, first) in server.items())


def report(args, fill_s: float, archive_only: dict, busy: dict, renders: list[dict], retried: list[str],
           live: tuple[list[float], list[float]]) -> None:
    refreshed = [r["refreshToRowsMs"] for r in renders]
    opened = [r["openToRowsMs"] for r in renders]
    first_page_ms = statistics.median(archive_only["first page (50)"][0])
    verdict = "met" if max(first_page_ms, statistics.median(refreshed)) <= 1000 else "missed"
    busy_total = busy["first page (50)"][2]
    from_daemon, from_return = live
    ms = lambda values: ", ".join(f"{s * 1000:.0f}" for s in values)  # noqa: E731
    text = f"""## Panel: history list with {args.builds:,} builds, live updates (`bench/bench_panel.py`)

A fresh archive of {args.builds:,} builds as kernels write them (7 steps, a 7-node graph, a scheduling
record each; written in {fill_s:.1f} s); the server extension and this checkout's built panel in
Debian's chromium. Server: `GET /envd/api/history` over loopback, the first request of each kind,
then 20 more (median, p95).

Archive only (fleet: dockerd 20.10, which has no history API — one reported error):

| request | items | total | first ms | median ms | p95 ms |
|---|---:|---:|---:|---:|---:|
{table(archive_only)}

With a busy daemon (fleet: dockerd 26 "current", whose own {busy_total - args.builds:,} records — every build the
project's tests made on it — are merged in; BuildKit 0.13 streams its whole history for any listing,
which the server keeps for `EnvdServer.listing_ttl` seconds: the very first request ("first ms" of the
first page) pays for the daemon's full listing, the later kinds reuse it):

| request | items | total | first ms | median ms | p95 ms |
|---|---:|---:|---:|---:|---:|
{table(busy)}

First render in Chromium (archive only, {args.rounds} rounds, a fresh browser each, timed in the page):
refresh button → list redrawn with the server's answer, median **{statistics.median(refreshed):.0f} ms**
(runs: {", ".join(f"{v:.0f}" for v in refreshed)} ms); click on the panel's tab → first row visible
(the list was loaded as Lab started), median {statistics.median(opened):.0f} ms. The list shows
"{renders[0]["range"]}".{f" Retried rounds: {len(retried)} ({'; '.join(retried)})." if retried else ""}

Live update (busy daemon; a solve on "current" → its finished row in the open panel, through the
daemon's history watch and the server's WebSocket; {len(from_daemon)} builds one after another): median
**{statistics.median(from_daemon) * 1000:.0f} ms** after the daemon completed the build (runs: {ms(from_daemon)} ms);
measured from the solve call's return in the client instead: {ms(from_return)} ms (the row can show
before the client has read the end of its status stream).

Target (≤ 1 s for the server's first page and the first render with {args.builds:,} builds): **{verdict}**."""
    write_section(SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
