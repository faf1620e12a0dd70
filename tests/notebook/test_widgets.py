"""Widget models: state after updates, throttled pushes, custom messages, MIME bundles, escaping."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading

import pytest

from envd_jupyter._proto import fsutil_pb2
from envd_jupyter.notebook import FILE_CAP, BrowserWidget, DAGWidget, ProgressWidget, ScoresWidget
from envd_jupyter.notebook._live import LOG_LINES, Throttle, VertexBook
from envd_jupyter.notebook._widgets import STATIC

from ._graphs import chain, graph, node, two_branches, two_branches_model, vertex
from .test_static import EVIL, scheduling_result

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class FakeTimer:
    """threading.Timer's shape; fires only when the test says so."""

    armed: list["FakeTimer"] = []

    def __init__(self, wait, fn):
        self.wait, self.fn, self.cancelled, self.daemon = wait, fn, False, False
        FakeTimer.armed.append(self)

    def start(self):
        pass

    def cancel(self):
        self.cancelled = True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def log_event(digest: str, text: str, **vertex_fields) -> dict:
    return {"version": 1, "kind": "log", "digest": digest, "warning": "", "status": None,
            "vertex": {"digest": digest, "name": "step", "state": "running", **vertex_fields},
            "log": {"stream": 1, "timestamp": 0.0, "text": text}}


def test_throttle_applies_at_once_then_at_most_once_per_interval():
    FakeTimer.armed = []
    clock, applied = Clock(), []
    throttle = Throttle(lambda: applied.append(clock.now), max_per_second=10, clock=clock, timer=FakeTimer)
    throttle.request()
    for _ in range(1000):
        throttle.request()
    assert applied == [100.0] and len(FakeTimer.armed) == 1
    assert FakeTimer.armed[0].wait == pytest.approx(0.1)
    clock.now += 0.1
    FakeTimer.armed[0].fn()
    assert applied == [100.0, 100.1]
    FakeTimer.armed[0].fn()  # nothing new pending
    assert len(applied) == 2


def test_throttle_flush_applies_what_is_pending_and_cancels_the_timer():
    FakeTimer.armed = []
    clock, applied = Clock(), []
    throttle = Throttle(lambda: applied.append(1), clock=clock, timer=FakeTimer)
    throttle.request()
    throttle.request()
    throttle.flush()
    assert applied == [1, 1] and FakeTimer.armed[0].cancelled
    throttle.flush()
    assert applied == [1, 1]


def test_vertex_book_joins_split_lines_and_keeps_the_last_lines():
    book = VertexBook()
    book.apply([log_event("a", "first li"), log_event("a", "ne\nsecond\n"), log_event("a", "third\r\n")])
    assert book.records["a"]["log_tail"] == ["first line", "second", "third"]
    book.apply([log_event("a", "".join(f"line {i}\n" for i in range(50)))])
    assert book.records["a"]["log_tail"] == [f"line {i}" for i in range(50 - LOG_LINES, 50)]
    assert book.records["a"]["state"] == "running" and book.records["a"]["log_bytes"] > 0


def test_an_endless_line_stays_bounded():
    book = VertexBook()
    book.apply([log_event("a", "x" * 5000) for _ in range(100)])
    assert len(book.records["a"]["log_tail"]) == 1 and len(book.records["a"]["log_tail"][0]) <= 2001


def test_dag_widget_pushes_vertex_states_and_carries_a_static_picture():
    widget = DAGWidget(two_branches())
    assert widget.graph_layout["mode"] == "dag" and len(widget.graph_layout["nodes"]) == 8
    widget.update_model(two_branches_model())
    widget.flush()
    assert widget.vertices["sha256:b1"]["state"] == "failed"
    assert widget.vertices["sha256:a2"]["log_tail"][-1] == "Successfully installed pandas-2.2.3"
    data, _ = widget._repr_mimebundle_()
    assert set(data) == {"text/plain", "text/html", WIDGET_VIEW}
    assert data[WIDGET_VIEW]["model_id"] == widget.model_id
    assert 'data-id="sha256:b1" data-state="failed"' in data["text/html"]
    assert data["text/plain"].startswith("DAG: 8 vertices")


def test_dag_widget_takes_events_one_by_one_as_an_event_callback():
    widget = DAGWidget(two_branches(), max_per_second=1e9)
    widget(log_event("sha256:a1", "Collecting numpy\n", index=2))
    widget({"version": 1, "kind": "completed", "digest": "sha256:a1", "log": None, "status": None, "warning": "",
            "vertex": {"digest": "sha256:a1", "state": "done", "duration": 3.0}})
    assert widget.vertices["sha256:a1"]["state"] == "done"
    assert widget.vertices["sha256:a1"]["log_tail"] == ["Collecting numpy"]


def test_expanding_a_chain_lays_the_graph_out_again():
    widget = DAGWidget(chain(30))
    assert len(widget.graph_layout["nodes"]) == 3
    widget.expanded = ["chain:sha256:c1"]
    assert len(widget.graph_layout["nodes"]) == 30
    widget.expanded = []
    assert len(widget.graph_layout["nodes"]) == 3


def test_a_graph_past_max_nodes_is_a_list_in_the_widget_too():
    widget = DAGWidget(chain(30), collapse=None, max_nodes=10)
    assert widget.graph_layout["mode"] == "list" and "shown as a list" in widget._repr_mimebundle_()[0]["text/html"]


def test_progress_widget_rows_summary_and_bundle():
    widget = ProgressWidget(title="build")
    widget.update_model(two_branches_model())
    widget.flush()
    assert [v["index"] for v in widget.vertices] == list(range(1, 9))
    assert widget.summary == {"total": 8, "cached": 2, "ran": 3, "failed": 1, "done": True,
                              "line": "8 vertices · 3 ran · 2 cached · 1 failed · stopped at [envd] apt-get install git"}
    data, _ = widget._repr_mimebundle_()
    assert set(data) == {"text/plain", "text/html", WIDGET_VIEW}
    assert data["text/plain"].startswith("Build: 8 vertices · 3 ran · 2 cached · 1 failed · stopped at [envd] apt-get install git")
    assert "E: Unable to locate package git" in data["text/html"]


def test_progress_lists_vertices_in_build_order_not_the_daemons_head_first_index():
    # BuildKit's first Status message names the whole graph head first: the merge gets index 1.
    model = [vertex("m", "merge", "done", 1, started=12.0, completed=12.1),
             vertex("b", "fetch data", "done", 2, started=11.0, completed=11.9),
             vertex("a", "make /app", "done", 3, started=10.0, completed=10.9),
             vertex("later", "not started yet", "pending", 4),
             vertex("img", "docker-image://busybox", "cached", 5, completed=9.0)]
    widget = ProgressWidget()
    widget.update_model(model)
    widget.flush()
    assert [v["digest"] for v in widget.vertices] == ["img", "a", "b", "m", "later"]
    text = widget._repr_mimebundle_()[0]["text/plain"].splitlines()
    assert text[1].startswith("  #1 cached") and text[4].endswith("merge") and text[5].startswith("  #5 pending")


def test_the_dag_keeps_ipywidgets_layout_free_for_its_dom_view():
    """The front end's DOMWidgetView reads `layout` as a Layout widget's reference; a dict there is a page error."""
    state = DAGWidget(two_branches()).get_state()
    assert state["layout"].startswith("IPY_MODEL_") and state["graph_layout"]["mode"] == "dag"


def test_a_log_flood_pushes_once_until_the_interval_passes():
    FakeTimer.armed = []
    widget = ProgressWidget()
    pushes = []
    widget._throttle = Throttle(lambda: pushes.append(widget._push()), clock=Clock(), timer=FakeTimer)
    widget.update_model([vertex("a", "pip install", "running", 1)])
    widget.apply_events(log_event("a", f"line {i}\n") for i in range(10_000))
    for i in range(200):
        widget(log_event("a", f"more {i}\n"))
    assert len(pushes) == 1 and len(FakeTimer.armed) == 1
    widget.flush()
    assert len(pushes) == 2
    assert widget.vertices[0]["log_tail"] == [f"more {i}" for i in range(190, 200)]


def test_scores_widget_holds_the_decision_and_its_tables():
    result = scheduling_result()
    widget = ScoresWidget(result)
    assert widget.scores["endpoint"] == result.endpoint.name and len(widget.scores["cycles"]) == 2
    data, _ = widget._repr_mimebundle_()
    assert set(data) == {"text/plain", "text/html", WIDGET_VIEW}
    assert "removed by saturation-filter: builder-c" in data["text/html"]
    widget.update(result.records[0])
    assert widget.scores["endpoint"] is None and len(widget.scores["cycles"]) == 1


FILES = {"/app/main.py": b"print('hi')\n", "/bin/tool": b"\x7fELF\x00\x01\x02" * 10,
         "/big.txt": b"a" * (FILE_CAP + 10), "/cut.txt": "é".encode() * (FILE_CAP // 2) + b"\xc3"}
DIRS = {"/": [{"name": "bin", "is_dir": True}, {"name": "app", "is_dir": True}, {"name": "big.txt", "size": 0},
              {"name": "sh", "is_symlink": True, "linkname": "/bin/tool"}],
        "/app": [{"name": "main.py", "size": 12}], "/bin": [{"name": "tool", "size": 70}]}


def browser(**kwargs) -> tuple[BrowserWidget, list[str]]:
    calls: list[str] = []

    def list_dir(path):
        calls.append(f"list {path}")
        return DIRS[path]

    def read_file(path):
        calls.append(f"read {path}")
        return FILES[path]

    return BrowserWidget(list_dir, read_file, **kwargs), calls


def test_browser_lists_the_root_only_until_asked():
    widget, calls = browser()
    assert calls == ["list /"]
    assert [e["name"] for e in widget.listings["/"]["entries"]] == ["app", "bin", "big.txt", "sh"]
    assert widget.listings["/"]["entries"][3] == {"name": "sh", "path": "/sh", "is_dir": False,
                                                       "is_symlink": True, "linkname": "/bin/tool", "size": 0}
    widget._handle_custom_msg({"type": "list", "path": "/app"}, [])
    widget._handle_custom_msg({"type": "list", "path": "/app/"}, [])
    assert calls == ["list /", "list /app"] and widget.listings["/app"]["entries"][0]["path"] == "/app/main.py"


def test_browser_opens_text_binary_and_capped_files():
    widget, _ = browser()
    widget._handle_custom_msg({"type": "list", "path": "/bin"}, [])
    widget._handle_custom_msg({"type": "open", "path": "/bin/tool"}, [])
    assert widget.file["binary"] and widget.file["about"] == "binary, 70 bytes" and widget.file["text"] == ""
    widget._handle_custom_msg({"type": "open", "path": "/big.txt"}, [])
    assert widget.file["truncated"] and len(widget.file["text"]) == FILE_CAP
    assert widget.file["about"] == "256.0 KiB (first 256.0 KiB shown)"
    widget._handle_custom_msg({"type": "open", "path": "/cut.txt"}, [])
    assert not widget.file["binary"] and widget.file["truncated"]
    widget.open_file("/app/main.py")
    assert widget.file["text"] == "print('hi')\n" and widget.file["about"] == "12 bytes"


def test_browser_callback_failures_become_one_line_messages():
    widget, _ = browser()
    widget._handle_custom_msg({"type": "list", "path": "/missing"}, [])
    assert widget.listings["/missing"] == {"entries": [], "more": 0, "error": "KeyError: '/missing'"}
    widget._handle_custom_msg({"type": "open", "path": "/nope"}, [])
    assert widget.file["error"] == "KeyError: '/nope'" and widget.file["about"] == "KeyError: '/nope'"


def test_browser_ignores_malformed_messages():
    widget, calls = browser()
    for message in ({"type": "open"}, {"type": "list", "path": 3}, "list", {"type": "rm", "path": "/"}):
        widget._handle_custom_msg(message, [])
    assert calls == ["list /"]


def test_browser_reads_fsutil_stats_with_go_mode_bits():
    stats = [fsutil_pb2.Stat(path="etc", mode=(1 << 31) | 0o755),
             fsutil_pb2.Stat(path="lib64", mode=(1 << 27) | 0o777, linkname="usr/lib64"),
             fsutil_pb2.Stat(path="hello", mode=0o644, size=5)]
    widget = BrowserWidget(lambda path: stats, lambda path: b"hello")
    entries = {e["name"]: e for e in widget.listings["/"]["entries"]}
    assert entries["etc"]["is_dir"] and entries["lib64"]["is_symlink"] and entries["hello"]["size"] == 5


def test_browser_for_ref_reads_no_more_than_the_cap():
    class Ref:
        def __init__(self):
            self.lengths = []

        def read_dir(self, path):
            return [{"name": "f", "size": 10**9}]

        def read_file(self, path, *, length=None):
            self.lengths.append(length)
            return b"x" * length

    ref = Ref()
    widget = BrowserWidget.for_ref(ref)
    widget.open_file("/f")
    assert ref.lengths == [FILE_CAP + 1] and widget.file["size"] == 10**9 and widget.file["truncated"]


def test_browser_logs_tab_and_static_listing():
    widget, _ = browser(logs=two_branches_model())
    assert [v["name"] for v in widget.logs][:2] == ["image python:3.11", "[envd] pip install numpy"]
    widget.open_file("/app/main.py")
    data, _ = widget._repr_mimebundle_()
    assert set(data) == {"text/plain", "text/html", WIDGET_VIEW}
    assert "sh → /bin/tool" in data["text/plain"] and "/app/main.py: 12 bytes" in data["text/plain"]
    assert "print(&#x27;hi&#x27;)" in data["text/html"]


def test_every_widget_bundle_escapes_names_logs_and_files():
    g = graph([node("a", EVIL, location=EVIL)], [])
    model = {"version": 1, "total": 1, "cached": 0, "ran": 1, "failed": 1, "done": True,
             "vertices": [vertex("a", EVIL, "failed", 1, error=EVIL, log_tail=[EVIL])]}
    dag = DAGWidget(g)
    dag.update_model(model)
    progress = ProgressWidget()
    progress.update_model(model)
    files = BrowserWidget(lambda p: [{"name": EVIL}], lambda p: EVIL.encode(), logs=model)
    files.open_file("/" + EVIL)
    dag.flush()
    progress.flush()
    for widget in (dag, progress, ScoresWidget(scheduling_result(evil=EVIL)), files):
        html = widget._repr_mimebundle_()[0]["text/html"]
        assert "<script" not in html and "&lt;script&gt;" in html, type(widget).__name__


@pytest.mark.parametrize("name", ["dag", "progress", "scores", "browser"])
def test_each_widget_module_is_offline_esm_that_parses(name, tmp_path):
    widget_class = {"dag": DAGWidget, "progress": ProgressWidget, "scores": ScoresWidget,
                    "browser": BrowserWidget}[name]
    module = widget_class._esm
    assert module.startswith((STATIC / "common.js").read_text())
    assert "export default { render }" in module and not re.search(r"^\s*import\b|\bimport\(", module, re.M)
    assert set(re.findall(r"\w+://[^\"'\s]*", module)) == {"http://www.w3.org/2000/svg"}  # a namespace, no fetch
    assert not re.search(r"\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write", module)
    node_binary = shutil.which("node")
    assert node_binary, "Node.js is part of this machine image"
    path = tmp_path / f"{name}.mjs"
    path.write_text(module)
    checked = subprocess.run([node_binary, "--check", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_the_static_picture_shows_updates_not_pushed_yet():
    FakeTimer.armed = []
    widget = DAGWidget(two_branches())
    widget._throttle = Throttle(widget._push, clock=Clock(), timer=FakeTimer)
    widget.update_model(two_branches_model(done=False))
    widget.update_vertices([{"digest": "sha256:b1", "state": "failed"}])
    assert widget.vertices["sha256:b1"]["state"] == "running"  # the second push waits for the timer
    assert 'data-id="sha256:b1" data-state="failed"' in widget._repr_mimebundle_()[0]["text/html"]


def test_events_from_a_solve_thread_while_pushes_run_on_another():
    widget = ProgressWidget(max_per_second=1e9)  # every request pushes: the most contention
    widget.update_model([vertex(f"v{i}", f"step {i}", "running", i) for i in range(20)])
    errors = []

    def produce():
        try:
            for i in range(3000):
                widget(log_event(f"v{i % 20}", f"line {i}\n", index=i % 20))
        except Exception as error:  # surfaced below
            errors.append(error)

    producers = [threading.Thread(target=produce) for _ in range(2)]
    for thread in producers:
        thread.start()
    for _ in range(200):
        widget.flush()
        widget._repr_mimebundle_()
    for thread in producers:
        thread.join(timeout=60)
    widget.flush()
    assert not errors and not any(t.is_alive() for t in producers)
    assert all(len(v["log_tail"]) == LOG_LINES for v in widget.vertices)
