"""Kernel responsiveness while a ``%%envd --background`` build streams 10,000 log lines a second.

A real kernel (jupyter_client, as JupyterLab drives one; ``JPY_SESSION_NAME`` set so the live widgets
stay) runs a background build whose one RUN step prints 100,000 lines at 10,000 lines/s (a busybox
``sh`` loop: one ``echo`` — one write — per line, paced against ``/proc/uptime``), ~10 s. Meanwhile a
probe cell (``1+1``) is sent again and again (a short pause between probes); its latency is Enter →
``execute_result`` on iopub. Peer: the same probes with no build running. The build runs with
``--progress auto`` (widgets: DAG and progress fed live, the issue's case) and ``--progress none``
(only the solve's own event handling), so the widgets' share shows. Widget updates: ``comm_msg``
state updates the kernel sent while the build ran, per widget. Rounds interleave the three variants.
Target: probe ≤ 100 ms; widget redraws ≤ 10/s.

Run: ``python -m bench.bench_kernel_responsiveness [--rounds 5]``
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench._kernel import Kernel
from bench._results import write_section
from bench.bench_cached_rebuild import daemon_env
from envd_jupyter.fleet import project_builders
from envd_jupyter.notebook._view import SUMMARY_MIME

SECTION = "notebook-kernel-responsiveness"
LINES = 100_000
RATE = 10_000  # lines a second: 100 lines per centisecond of /proc/uptime
PROBE_GAP = 0.05  # seconds between one probe's answer and the next probe
TARGET_MS = 100
STREAM_SCRIPT = """i=0; read up _ < /proc/uptime; start=${up%.*}${up#*.}
while [ $i -lt LINES ]; do
  j=0
  while [ $j -lt 100 ]; do echo "line $i"; i=$((i+1)); j=$((j+1)); done
  read up _ < /proc/uptime; now=${up%.*}${up#*.}
  ahead=$(( i / 100 - (now - start) ))
  if [ $ahead -gt 0 ]; then usleep $((ahead * 10000)); fi
done
echo TOKEN >/dev/null"""
WIDGET_KEYS = {"expanded": "DAG", "summary": "progress", "scores": "scores", "listings": "browser"}


def stream_bytes() -> int:
    """What the step writes: ``line 0`` … ``line 99999``, one line each."""
    return sum(len(f"line {i}\n") for i in range(LINES))


def build_cell(progress: str) -> str:
    script = STREAM_SCRIPT.replace("LINES", str(LINES)).replace("TOKEN", uuid.uuid4().hex)  # never cached
    return f"%%envd flood --background --progress {progress}\nllb.image(BUSYBOX).run({script!r}, name='stream logs')"


STEP_FACTS = """_flood = get_ipython().magics_manager.registry["Envd"]._stages["flood"].result().step("stream logs")
(_flood.log_bytes + _flood.dropped_log_bytes, _flood.duration)"""


def probe(kernel: Kernel) -> tuple[float, list]:
    """One ``1+1``: seconds to its result, and the messages (comm traffic, displays) read meanwhile."""
    started = time.perf_counter()
    reply = kernel.collect(kernel.send("1+1"), started, timeout=120)
    if reply.result.get("text/plain") != "2":
        raise RuntimeError(f"probe answered {reply.result!r}")
    return reply.result_at, reply


def probe_while_building(kernel: Kernel, progress: str, timeout: float = 120) -> dict:
    """Start the background build, probe until its summary is shown; the probes, updates and step facts."""
    began, cpu_before = time.perf_counter(), kernel.cpu_seconds()
    latencies, updates, widgets, summary_at = [], Counter(), {}, None
    count_updates(kernel.execute(build_cell(progress), cell_id=f"flood-{progress}"), widgets, updates)
    while summary_at is None:
        if time.perf_counter() - began > timeout:
            raise TimeoutError(f"the background build showed no summary within {timeout:.0f} s")
        latency, reply = probe(kernel)
        latencies.append(latency)
        count_updates(reply, widgets, updates)
        if reply.data_with(SUMMARY_MIME, foreign=True):
            summary_at = time.perf_counter() - began
        time.sleep(PROBE_GAP)
    cpu = kernel.cpu_seconds() - cpu_before
    delivered, duration = ast.literal_eval(kernel.execute(STEP_FACTS).result["text/plain"])
    return {"latencies": latencies, "updates": updates, "seconds": summary_at, "delivered": delivered,
            "step_seconds": duration, "cpu": cpu}


def count_updates(reply, widgets: dict[str, str], updates: Counter) -> None:
    """Name each widget at its comm_open (by a trait only it has); count its state updates."""
    for _, content in reply.comm_messages:
        data = content.get("data", {})
        if content["msg_type"] == "comm_open":
            state = data.get("state", {})
            widgets[content["comm_id"]] = next((w for k, w in WIDGET_KEYS.items() if k in state), "layout")
        elif content["msg_type"] == "comm_msg" and data.get("method") == "update":
            updates[widgets.get(content["comm_id"], "unknown")] += 1


def probe_idle(kernel: Kernel, count: int) -> tuple[list[float], float, float]:
    """``count`` probes with no build: their latencies, the kernel's CPU seconds and the wall time."""
    latencies, began, cpu_before = [], time.perf_counter(), kernel.cpu_seconds()
    for _ in range(count):
        latencies.append(probe(kernel)[0])
        time.sleep(PROBE_GAP)
    return latencies, kernel.cpu_seconds() - cpu_before, time.perf_counter() - began


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95, ordered[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = daemon_env()
    address, busybox = project_builders()["current"], env["ENVD_IMAGE_BUSYBOX"]
    loads = [os.getloadavg()[0]]
    runs: dict[str, list[dict]] = {"idle": [], "auto": [], "none": []}
    with tempfile.TemporaryDirectory(prefix="envd-bench-probe-") as work, Kernel(Path(work)) as kernel:
        kernel.execute(f"%load_ext envd_jupyter\n%config Envd.builders = {{'current': {address!r}}}\n"
                       f"BUSYBOX = {busybox!r}")
        kernel.execute("%%envd warm --progress none\nllb.image(BUSYBOX).run('true')")  # connect, pull
        variants = list(runs)
        for round_number in range(args.rounds):
            shift = round_number % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                if variant == "idle":
                    latencies, cpu, seconds = probe_idle(kernel, 150)
                    run = {"latencies": latencies, "cpu": cpu, "seconds": seconds}
                else:
                    run = probe_while_building(kernel, variant)
                runs[variant].append(run)
                loads.append(os.getloadavg()[0])
                print(f"round {round_number + 1}, {variant}: {len(run['latencies'])} probes, p50/p95/max "
                      f"{[round(x * 1000) for x in percentiles(run['latencies'])]} ms, kernel CPU "
                      f"{run['cpu'] / run['seconds']:.0%}, {run.get('delivered', 0)} bytes, "
                      f"updates {dict(run.get('updates', {}))}", flush=True)
    markdown = report(runs, loads, args)
    write_section(SECTION, markdown)
    print(markdown)


def report(runs: dict[str, list[dict]], loads: list[float], args: argparse.Namespace) -> str:
    expected = stream_bytes()

    def row(label: str, variant: list[dict], extra: str) -> str:
        latencies = [x for run in variant for x in run["latencies"]]
        p50, p95, worst = (x * 1000 for x in percentiles(latencies))
        cpu = sum(run["cpu"] for run in variant) / sum(run["seconds"] for run in variant)
        return (f"| {label} | {len(latencies)} | {p50:.0f} | {p95:.0f} {'✅' if p95 <= TARGET_MS else '❌'} | "
                f"{worst:.0f} | {cpu:.0%} | {extra} |")

    rows = [row("no build (peer)", runs["idle"], "–")]
    tails, rates_by_widget = {}, Counter()
    for progress in ("auto", "none"):
        variant = runs[progress]
        rates = [run["delivered"] / expected * LINES / run["step_seconds"] for run in variant]
        complete = all(run["delivered"] == expected for run in variant)
        updates = Counter()
        for run in variant:
            updates.update(run["updates"])
        seconds = sum(run["seconds"] for run in variant)
        per_widget = ", ".join(f"{w} {n / seconds:.1f}/s {'✅' if n / seconds <= 10 else '❌'}"
                               for w, n in sorted(updates.items()))
        total = f"; all widgets together {sum(updates.values()) / seconds:.1f}/s" if len(updates) > 1 else ""
        extra = (f"{statistics.median(rates):,.0f} lines/s reached the kernel ({'all' if complete else 'NOT all'} "
                 f"{LINES:,} lines); widget updates: {per_widget or 'none sent'}{total}")
        rows.append(row(f"`%%envd --background --progress {progress}` streaming", variant, extra))
        tails[progress] = [x for run in variant for x in run["latencies"]]
        rates_by_widget.update({w: n / seconds for w, n in updates.items()})
    tails["idle"] = [x for run in runs["idle"] for x in run["latencies"]]
    cpu = {name: sum(run["cpu"] for run in variant) / sum(run["seconds"] for run in variant)
           for name, variant in runs.items()}
    p95_met = all(percentiles(latencies)[1] * 1000 <= TARGET_MS for latencies in tails.values())
    over = {name: sum(x * 1000 > TARGET_MS for x in latencies) for name, latencies in tails.items()}
    over = {name: f"{count} of {len(tails[name])} in {'the no-build peer' if name == 'idle' else name}"
            for name, count in over.items() if count}
    widest = max(rates_by_widget.values(), default=0.0)
    verdict_text = (
        f"**Verdict.** Probe ≤ {TARGET_MS} ms at p95 while 10,000 lines/s stream: "
        f"{'met' if p95_met else 'missed'}. Single probes over {TARGET_MS} ms: "
        + (", ".join(over.values()) + (" — the no-build peer too, so part of that tail is the shared "
                                        "machine (processes waiting for a core)" if "idle" in over else "")
           if over else "none")
        + f". Widget redraws: each live widget at most {widest:.1f} updates/s "
        f"({'met' if widest <= 10 else 'missed'} per widget, the issue's \"redraws coalesced to ≤ 10/s\"); "
        "the DAG and the progress list are two widgets, so the kernel sends about twice that many comm "
        f"messages in all. The cost is the kernel's CPU: {cpu['none']:.0%} of a core without widgets (the "
        f"solve's status thread turns every log chunk into an event), {cpu['auto']:.0%} with them, "
        f"{cpu['idle']:.0%} for the probes alone. The build runs off the kernel's main thread, so a probe "
        "waits only for the GIL and a core: profiled with `py-spy --gil` during such a build, grpc's "
        "channel-spin thread and the solve's status thread (reading each StatusResponse, then "
        "`BuildModel.apply`) hold the GIL about as often as the main thread does, and the RUN's shell loop "
        "and dockerd take the cores, so now and then a probe waits behind them — with or without widgets "
        "(disabling the widget pushes left the same rare spikes); cutting that further is the status "
        "stream's cost in `buildkit`, not the notebook layer's.")
    return "\n".join([
        "## Notebook: kernel responsiveness while a build streams 10,000 log lines/s "
        "(`bench/bench_kernel_responsiveness.py`)",
        "",
        f"A real kernel (jupyter_client; `JPY_SESSION_NAME` set, so live widgets stay) runs a background build "
        f"whose RUN prints {LINES:,} lines at {RATE:,}/s (busybox `sh`: one `echo`, one write, per line, paced "
        f"against `/proc/uptime`); meanwhile `1+1` is executed again and again ({PROBE_GAP * 1000:.0f} ms "
        "between an answer and the next probe), Enter → `execute_result` on iopub. Peer: the same probe with no "
        "build running (150 probes a round). *kernel CPU*: the kernel process's CPU time ÷ wall time (100% = "
        "one core). *lines/s*: bytes of the step's log that reached the kernel's model ÷ the step's duration "
        "(the loop itself runs slower than 10,000/s when the machine is busy). *widget updates*: `comm_msg` "
        "state updates the kernel sent while the build ran ÷ the build's wall time. "
        f"{args.rounds} rounds, variants interleaved (order rotated); latencies pooled. Target: probe ≤ "
        f"{TARGET_MS} ms (judged at p95; max shown), widget redraws ≤ 10/s.",
        "",
        "| probe while | probes | p50 ms | p95 ms | max ms | kernel CPU | build |",
        "|---|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        verdict_text,
        "",
        f"1-minute load average {loads[0]:.1f} before, {min(loads):.1f}–{max(loads):.1f} over the run, "
        f"{loads[-1]:.1f} after (2 shared cores).",
    ])


if __name__ == "__main__":
    main()
