"""Render the static pictures and the widgets in headless Chromium and save screenshots.

A look-at-it check for people changing the widgets (JupyterLab itself is exercised by the real
browser test): each widget's ESM runs against a stand-in for the anywidget model holding the
Python widget's real state, so the page shows exactly what the kernel would send. The stand-in
answers the browser widget's requests and DAG expansions from answers computed here.

Run: python -m tests.notebook.screenshots [--out tests/artifacts] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
import tempfile
from pathlib import Path

from envd_jupyter.notebook._layout import layout_graph
from envd_jupyter.notebook._svg import dag_html
from envd_jupyter.notebook._tables import progress_html, scores_html
from envd_jupyter.notebook._failure_view import failure_bundle
from envd_jupyter.notebook._stepper_view import StepperWidget
from envd_jupyter.notebook._widgets import STATIC, BrowserWidget, DAGWidget, ProgressWidget, ScoresWidget

from ._graphs import chain, node, two_branches, two_branches_model
from .test_static import scheduling_result

DARK = ("--jp-layout-color0:#111111;--jp-layout-color1:#1e1e1e;--jp-layout-color2:#2a2a2a;"
        "--jp-layout-color3:#3a3a3a;--jp-ui-font-color1:#e6e6e6;--jp-ui-font-color2:#b0b0b0;"
        "--jp-border-color1:#8a8a8a;--jp-border-color2:#444444;--jp-brand-color1:#64b5f6;"
        "--jp-content-link-color:#90caf9;background:#111111")

FAKE_MODEL = """
class FakeModel {
  constructor(state, answer) { this.state = state; this.answer = answer; this.handlers = {}; this.dirty = []; }
  get(name) { return this.state[name]; }
  set(name, value) { this.state[name] = value; this.dirty.push(name); }
  save_changes() { const names = this.dirty; this.dirty = []; for (const n of names) this.emit(n); }
  on(event, fn) { (this.handlers[event] ||= []).push(fn); }
  off(event, fn) { this.handlers[event] = (this.handlers[event] || []).filter((f) => f !== fn); }
  emit(name) { for (const fn of this.handlers[`change:${name}`] || []) fn(); if (this.answer) this.answer(name, this); }
  send(message) { setTimeout(() => this.answer && this.answer(message, this), 10); }
}
"""


def js(value: object) -> str:
    """JSON for inside an inline <script>: "</" escaped so a name holding "</script>" cannot end it."""
    return json.dumps(value).replace("</", "<\\/")

# What the page ended up with, written into the DOM for --dump-dom: a name or log line that
# escaped its text node would add <script>/<img> elements beyond the page's own scripts.
CHECK = """
setTimeout(() => { document.body.dataset.check = JSON.stringify({
  scripts: document.querySelectorAll('script').length, imgs: document.querySelectorAll('img').length,
  nodes: document.querySelectorAll('.envd-node').length, details: !!document.querySelector('.envd-details:not([hidden])'),
  file: (document.querySelector('.envd-viewer') || {}).textContent || '' }); }, 1500);
"""


def widget_script(name: str, state: dict, answer_js: str = "null", element: str = "") -> str:
    """``name``.js rendered into the element with id ``element`` (default: ``name``)."""
    element = element or name
    module = (STATIC / "common.js").read_text() + (STATIC / f"{name}.js").read_text()
    module = module.replace("export default {", f"const {name}Widget = {{")
    return (f"{{\n{module}\nconst model = new FakeModel({js(state)}, {answer_js});\n"
            f"{name}Widget.render({{model, el: document.getElementById('{element}')}});\n"
            f"window.models.{element} = model;\n}}")


def browser_answers(widget: BrowserWidget, files: dict[str, bytes], dirs: dict[str, list]) -> str:
    listings = {}
    for path in dirs:
        widget.open_dir(path)
    listings = widget.listings
    views = {}
    for path in files:
        widget.open_file(path)
        views[path] = widget.file
    return (f"(msg, model) => {{ const listings = {js(listings)}; const views = {js(views)};"
            "if (msg.type === 'list') { model.state.listings = {...model.state.listings, [msg.path]: listings[msg.path]};"
            " model.emit('listings'); }"
            " if (msg.type === 'open') { model.state.file = views[msg.path]; model.emit('file'); } }")


def dag_answers(widget: DAGWidget, expansions: list[list[str]]) -> str:
    layouts = {json.dumps(ids, separators=(",", ":")): widget._lay_out(ids) for ids in expansions}
    return (f"(name, model) => {{ const layouts = {js(layouts)};"
            " if (name === 'expanded') { const l = layouts[JSON.stringify(model.state.expanded)];"
            " if (l) { model.state.graph_layout = l; model.emit('graph_layout'); } } }")


def demo_graph() -> dict:
    """The tutorial's two branches plus a 16-step chain after them (folds by default)."""
    g = two_branches()
    tail = chain(17, prefix="t")
    tail["nodes"][0] = node("sha256:t0", "sh -c 'pytest -q tests/'")
    g["nodes"] += tail["nodes"]
    g["edges"] += tail["edges"] + [{"source": "sha256:t", "target": "sha256:t0", "index": 0}]
    return g


def pages(workdir: Path) -> dict[str, tuple[Path, str]]:
    """name → (page, window size)."""
    model = two_branches_model(done=False)
    evil = node("sha256:evil", "<script>alert('name')</script> sh -c 'echo <b>hi</b>'")
    g = demo_graph()
    g["nodes"].append(evil)
    g["edges"].append({"source": "sha256:a1", "target": "sha256:evil", "index": 0})
    model["vertices"].append({**model["vertices"][2], "digest": "sha256:evil", "name": evil["name"],
                              "log_tail": ["<img src=x onerror=alert(1)>", "</pre><script>alert(2)</script>"]})
    vertices = {v["digest"]: v for v in model["vertices"]}
    static = "".join([dag_html(layout_graph(g), vertices), "<hr>", progress_html(model), "<hr>",
                      scores_html(scheduling_result())])

    dag = DAGWidget(g)
    dag.update_model(model)
    dag.flush()
    progress = ProgressWidget(title="two-branch build")
    progress.update_model(model)
    progress.flush()
    scores = ScoresWidget(scheduling_result())
    files = {"/app/main.py": b"print('hello from the stage')\n" * 3, "/bin/busybox": b"\x7fELF\x00\x01" * 400}
    dirs = {"/": [{"name": "app", "is_dir": True}, {"name": "bin", "is_dir": True},
                  {"name": "etc", "is_dir": True}, {"name": "sh", "is_symlink": True, "linkname": "/bin/busybox"}],
            "/app": [{"name": "main.py", "size": len(files["/app/main.py"])}],
            "/bin": [{"name": "busybox", "size": len(files["/bin/busybox"])}], "/etc": []}
    browser = BrowserWidget(lambda p: dirs[p], lambda p: files[p], logs=model, title="stage: two-branch")
    answers = browser_answers(browser, files, dirs)
    fresh = BrowserWidget(lambda p: dirs[p], lambda p: files[p], logs=model, title="stage: two-branch")

    dag_state = {k: dag.get_state()[k] for k in ("graph_layout", "vertices", "styles", "selected", "expanded")}
    dag_state["selected"] = "sha256:b1"
    scripts = {
        "dag": widget_script("dag", dag_state, dag_answers(dag, [[dag.graph_layout["chains"][0]["id"]]])),
        "progress": widget_script("progress", {k: progress.get_state()[k]
                                               for k in ("vertices", "summary", "styles", "title")}),
        "scores": widget_script("scores", {"scores": scores.scores}),
        "browser": widget_script("browser", {k: fresh.get_state()[k]
                                             for k in ("root", "listings", "file", "logs", "styles", "title")},
                                 answers),
    }
    scripts.update(stepper_scripts(g))
    failure = {"state_name": "app", "step": "[envd] apt-get install git", "exit_code": 100, "location": "cell-1:2",
               "log_tail": ["E: Unable to locate package gti"], "note": "Files below: the filesystem before the "
               "failed step (the daemon did not report its own).", "shown": "before"}
    css = (STATIC / "widgets.css").read_text()
    open_file = """
setTimeout(() => {
  const tree = document.querySelector('#browser .envd-tree');
  [...tree.querySelectorAll('span')].find((s) => s.textContent.includes('app/')).click();
  setTimeout(() => [...tree.querySelectorAll('span')].find((s) => s.textContent.includes('main.py')).click(), 50);
}, 50);
"""
    expand = ("setTimeout(() => { const m = window.models.dag;"
              " m.set('expanded', [m.get('graph_layout').chains[0].id]); m.save_changes(); }, 50);")

    def mount(*names: str, extra: str = "") -> str:
        divs = "<hr>".join(f"<div id={name}></div>" for name in names)
        return f"{divs}<script type=module>{''.join(scripts[n] for n in names)}{extra}</script>"

    made = {}
    for name, body, size, style in [
        ("static", static, "1100,1380", ""),
        ("widgets", mount("dag", "progress", "scores", "browser", extra=open_file), "1200,1300", ""),
        ("widgets-dark", mount("dag", "progress"), "1200,800", DARK),
        ("dag-expanded", mount("dag", extra=expand), "1200,640", ""),
        ("stepper-failed", mount("stepper", "stepdag"), "1200,760", ""),
        ("stepper-failed-dark", mount("stepper", "stepdag"), "1200,760", DARK),
        ("envd-failure", mount("failure") + "<hr>" + failure_bundle(failure)["text/html"], "1000,560", ""),
        ("envd-failure-dark", mount("failure"), "1000,300", DARK),
    ]:
        page = workdir / f"{name}.html"
        page.write_text(f"<!doctype html><html><head><meta charset=utf-8><style>{css}</style>"
                        f"<script>window.models = {{}};{FAKE_MODEL}</script></head>"
                        f"<body style='margin:12px;{style}'>{body}<script>{CHECK}</script></body></html>")
        made[name] = (page, size)
    return made


def stepper_scripts(graph: dict) -> dict[str, str]:
    """The stepper's failure view over the demo graph: b1 failed where the stepper stopped, a breakpoint on a2."""
    reasons = [{"digest": "sha256:a1", "name": "[envd] pip install numpy", "status": "ran",
                "reason": "argv changed (argv: -['numpy==1.26'] +['numpy==2.0'])"},
               {"digest": "sha256:base", "name": "image python:3.11", "status": "cached", "reason": "served from cache"},
               {"digest": "sha256:b1", "name": "[envd] apt-get install git", "status": "failed",
                "reason": "input changed: [envd] pip install numpy (cell-1:2) — argv changed"}]
    dag = DAGWidget(graph, marks={"current": "sha256:b1", "breakpoints": ["sha256:a2"]}, reasons=reasons)
    dag.update_model(two_branches_model())  # b1 failed
    dag.flush()
    stepper = StepperWidget(state_name="app", status="failed", breakpoints=["[envd] pip install pandas"],
                            headline="failed at step 4/9: [envd] apt-get install git",
                            position={"index": 4, "total": 9, "name": "[envd] apt-get install git",
                                      "digest": "sha256:b1", "cached": False},
                            failure={"step": "[envd] apt-get install git", "exit_code": 100, "location": "cell-1:2",
                                     "log_tail": ["E: Unable to locate package gti"],
                                     "note": "Files below: as the failed step '[envd] apt-get install git' saw them "
                                             "when it failed (%envd_exec app -- CMD runs there too).\n"
                                             "%envd_ls / %envd_cat app: showing the filesystem before the failed "
                                             "step '[envd] apt-get install git'.", "shown": "own"})
    keys = ("graph_layout", "vertices", "styles", "selected", "expanded", "marks", "reasons")
    return {"stepper": widget_script("stepper", {k: stepper.get_state()[k] for k in
                                                 ("state_name", "status", "headline", "position", "breakpoints",
                                                  "message", "failure")}),
            "failure": widget_script("failure", {"failure": {**stepper.failure, "state_name": "app"}}),
            "stepdag": widget_script("dag", {k: dag.get_state()[k] for k in keys}, element="stepdag")}


def shoot(chromium: str, page: Path, size: str, png: Path) -> str:
    """Screenshot ``page`` into ``png``; returns the page's DOM after scripts ran."""
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--window-size={size}",
             "--virtual-time-budget=3000"]
    subprocess.run(flags + [f"--screenshot={png}", page.as_uri()], check=True, capture_output=True, timeout=120)
    return subprocess.run(flags + ["--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                          timeout=120).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/artifacts"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        for name, (page, size) in pages(Path(workdir)).items():
            dom = shoot(args.chromium, page, size, args.out / f"notebook-{name}.png")
            check = re.search(r'data-check="([^"]*)"', dom)
            print(f"{name}: {args.out / f'notebook-{name}.png'} {html.unescape(check.group(1)) if check else 'no check'}")

if __name__ == "__main__":
    main()
