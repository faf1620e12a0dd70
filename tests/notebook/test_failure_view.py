"""A failed ``%%envd`` cell's one failure output, against the real daemons, headless and live.

The output holds the failing step, its exit code, its last log lines, the cell line and the files the
command saw (its own filesystem where the daemon reports it: dockerd 26; else the one it started
from: dockerd 20.10), with a note saying which. The cell still fails with the one-line error.
"""

from __future__ import annotations

import html
import re
import uuid

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display

from envd_jupyter import buildkit
from envd_jupyter.notebook import _magics, _view
from envd_jupyter.notebook._display import BundledBox
from envd_jupyter.notebook._failure_view import FailureWidget, _stat_entry
from envd_jupyter.notebook._tables import summary_line
from envd_jupyter.notebook._widgets import STATIC, BrowserWidget, ProgressWidget

BUSYBOX = "envd-jupyter/busybox:latest"


def start_shell(socket: str, tmp_path, monkeypatch, *, live: bool):
    monkeypatch.chdir(tmp_path)
    if live:  # the magics believe a Jupyter server started this kernel: live widgets
        monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "failure.ipynb"))
        monkeypatch.setattr(_magics, "_in_jupyter_kernel", lambda shell: True)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "envd_jupyter")
    ip.run_line_magic("config", f'Envd.builder = "docker+unix://{socket}"')
    ip.user_ns["BUSYBOX"] = BUSYBOX
    shown: list = []
    publish = ip.display_pub.publish
    monkeypatch.setattr(ip.display_pub, "publish", lambda data, *a, **k: (shown.append(data), publish(data, *a, **k)))
    return ip, shown


@pytest.fixture
def headless(any_daemon, tmp_path, monkeypatch):
    ip, shown = start_shell(any_daemon, tmp_path, monkeypatch, live=False)
    yield ip, shown
    ip.run_line_magic("unload_ext", "envd_jupyter")
    InteractiveShell.clear_instance()


@pytest.fixture
def live(docker_current, tmp_path, monkeypatch):
    ip, shown = start_shell(docker_current, tmp_path, monkeypatch, live=True)
    displayed: list = []  # the objects the cell displays (the live box is a widget, not a bundle)
    monkeypatch.setattr(_view, "display", lambda obj, **k: (displayed.append(obj), display(obj, **k))[1])
    yield ip, shown, displayed
    ip.run_line_magic("unload_ext", "envd_jupyter")
    InteractiveShell.clear_instance()


def fail(ip, token: str):
    """A cell whose second step writes a file, says why on stdout, and exits 3."""
    body = (f'prepared = llb.image(BUSYBOX).run("echo {token} > /prepared", name="prepare")\n'
            f'prepared.run("echo half > /half-done; echo boom-{token}; exit 3", name="compile")')
    result = ip.run_cell(f"%%envd broken\n{body}")
    assert isinstance(result.error_in_exec, buildkit.SolveError)  # still an error: raises-exception cells
    assert str(result.error_in_exec).startswith("step 'compile' (cell[broken]:2) failed with exit code 3")
    return result.error_in_exec


def words(markup: str) -> str:
    """What a reader sees of static HTML: its text, unescaped, spaces squeezed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def assert_the_failure(text: str, token: str, own: bool) -> None:
    assert "broken: build failed" in text and "✗ step 'compile' failed with exit code 3" in text
    assert "cell[broken]:2" in text and f"boom-{token}" in text
    assert "%envd_ls / %envd_cat broken: showing the filesystem before the failed step 'compile'" in text \
        or "broken: showing the filesystem before the failed step 'compile'" in text
    if own:
        assert "Files below: as the failed step 'compile' saw them when it failed" in text
        assert "broken: files of the failed step 'compile', as they were when it failed" in text
    else:
        assert "Files below: the filesystem before the failed step 'compile' (the daemon did not report" in text
    assert "prepared" in text and ("half-done" in text) == own


def test_a_failed_cell_shows_one_failure_output_headless(headless):
    ip, shown = headless
    token = uuid.uuid4().hex[:12]
    error = fail(ip, token)
    own = bool(error.mounts)  # dockerd 26 reports the failed step's own filesystem; 20.10 does not
    [view] = [data for data in shown if "broken: build failed" in data.get("text/plain", "")]
    assert not any("showing the filesystem before" in data.get("text/plain", "") for data in shown
                   if data is not view)  # no separate note or listing any more
    assert_the_failure(view["text/plain"], token, own)
    assert_the_failure(words(view["text/html"]), token, own)
    assert f"data-shown='{'own' if own else 'before'}'" in view["text/html"]
    assert "Build: 3 vertices" in "".join(d["text/plain"] for d in shown)
    assert any("1 failed · stopped at compile" in d["text/plain"] for d in shown)


def test_a_failed_cell_in_jupyterlab_shows_the_failure_and_a_browser_over_the_files_it_saw(live):
    ip, _shown, displayed = live
    token = uuid.uuid4().hex[:12]
    fail(ip, token)
    [box] = [obj for obj in displayed if isinstance(obj, BundledBox)]
    failure, browser = box.children
    assert isinstance(failure, FailureWidget) and isinstance(browser, BrowserWidget)
    assert failure.failure["shown"] == "own" and failure.failure["exit_code"] == 3
    assert browser.title == "broken: files of the failed step 'compile', as they were when it failed"
    assert {"half-done", "prepared"} <= {e["name"] for e in browser.listings["/"]["entries"]}
    browser.open_file("/half-done")  # read by a command in a container over the failed step's mounts
    assert browser.file["text"] == "half\n" and browser.file["error"] == ""
    browser.open_file("/nowhere")
    assert "No such file" in browser.file["error"]
    bundle = box._repr_mimebundle_()
    assert_the_failure(bundle["text/plain"], token, own=True)
    assert_the_failure(words(bundle["text/html"]), token, own=True)


@pytest.mark.parametrize("line, expected", [
    ("41ed 4096 /etc", {"name": "etc", "is_dir": True, "is_symlink": False, "linkname": "", "size": 4096}),
    ("81a4 5 '/src/config.log'", {"name": "config.log", "is_dir": False, "is_symlink": False, "linkname": "",
                                  "size": 5}),
    ("a1ff 12 '/d/sh' -> '/bin/busybox'", {"name": "sh", "is_dir": False, "is_symlink": True,
                                          "linkname": "/bin/busybox", "size": 12}),
    ("stat: can't stat", None)])
def test_stat_lines_of_busybox_and_gnu_become_listing_entries(line, expected):
    assert _stat_entry(line) == expected


def test_the_progress_header_has_one_rule_for_its_words():
    vertices = [{"digest": "a", "name": "prepare", "state": "done", "started": 1.0},
                {"digest": "b", "name": "compile", "state": "failed", "started": 2.0}]
    model = {"total": 3, "ran": 1, "cached": 0, "failed": 1, "done": False,
             "vertices": vertices + [{"digest": "c", "name": "after", "state": "pending"}]}
    assert summary_line(model) == "3 vertices · 1 ran · 0 cached · 1 failed · stopped at compile"
    assert summary_line({**model, "failed": 0, "vertices": vertices[:1]}) == \
        "3 vertices · 1 ran · 0 cached · 0 failed · running"
    widget = ProgressWidget(title="broken")
    widget.update_model(model)
    widget.flush()
    assert widget.summary["line"] == "3 vertices · 1 ran · 0 cached · 1 failed · stopped at compile"
    script = (STATIC / "progress.js").read_text()  # the widget shows the kernel's line, with no words of its own
    assert "s.line" in script and "running" not in script.split("summary.textContent", 1)[1].split(";")[0]
