"""Rebuild reasons beside the DAG and the stepper's marks in the static pictures (pure: no daemon)."""

from __future__ import annotations

from envd_jupyter import lang, llb
from envd_jupyter.notebook._layout import layout_graph
from envd_jupyter.notebook._reasons import NO_PREVIOUS, SAME_OP, reasons_html, reasons_text, step_reasons
from envd_jupyter.notebook._stepper_view import stepper_html, stepper_text
from envd_jupyter.notebook._svg import dag_html, dag_text, render_svg
from envd_jupyter.notebook._widgets import DAGWidget

from ._graphs import chain


def definition(first: str = "echo one > /one"):
    base = llb.image("busybox:latest")
    return base.run(first, name="first").run("echo two > /two", name="second").run("echo 3", name="third").marshal()


def model(current, ran: set[str], extra: tuple = ()) -> dict:
    """Every vertex finished: the named ones ran, the rest came from cache; ``extra`` vertices the daemon adds."""
    vertices = [{"digest": v.digest, "name": v.name, "state": "done" if v.name in ran else "cached",
                 "cached": v.name not in ran, "started": float(n)} for n, v in enumerate(current.vertices())]
    return {"vertices": vertices + list(extra)}


def test_each_step_that_ran_names_the_first_change_that_made_it_run():
    previous, current = definition(), definition("echo ONE > /one")
    report = lang.explain_rebuild(previous, current)
    daemon_only = {"digest": "sha256:resolve", "name": "[internal] load metadata", "state": "done", "started": 0.5}
    rows = step_reasons(report, current.to_graph(), model(current, {"first", "second", "third"}, (daemon_only,)))
    by_name = {row["name"]: row for row in rows}
    assert [row["name"] for row in rows] == ["image busybox:latest", "first", "second", "third"]  # no daemon vertex
    assert by_name["image busybox:latest"] == {**by_name["image busybox:latest"], "status": "cached",
                                               "reason": "served from cache"}
    assert by_name["first"]["status"] == "ran" and by_name["first"]["reason"].startswith("argv changed (argv: -")
    assert "ONE" in by_name["first"]["reason"]
    for name in ("second", "third"):  # downstream: traced back along the inputs to the first change
        assert by_name[name]["reason"].startswith("input changed: first — argv changed"), by_name[name]
    late_first = model(current, {"first", "second", "third"})
    for vertex in late_first["vertices"]:  # cached steps are reported in any order: rows follow the graph
        vertex["started"] = -vertex["started"]
    assert step_reasons(report, current.to_graph(), late_first) == rows


def test_without_a_previous_solve_or_a_change_the_reason_says_so():
    current = definition()
    [row] = [r for r in step_reasons(None, current.to_graph(), model(current, {"first"})) if r["status"] == "ran"]
    assert row == {**row, "name": "first", "reason": NO_PREVIOUS}
    same = lang.explain_rebuild(current, current)
    [row] = [r for r in step_reasons(same, current.to_graph(), model(current, {"second"})) if r["status"] == "ran"]
    assert row["name"] == "second" and row["reason"] == SAME_OP


def test_an_unchanged_image_the_daemon_resolved_again_counts_as_cached_a_changed_one_ran():
    current = definition()
    resolved = model(current, {"image busybox:latest"})  # BuildKit said "done", not "cached", for the source
    [image] = [r for r in step_reasons(lang.explain_rebuild(current, current), current.to_graph(), resolved)
               if r["name"] == "image busybox:latest"]
    assert image["status"] == "cached"
    other = llb.image("busybox:1.36").run("echo one > /one", name="first").run(
        "echo two > /two", name="second").run("echo 3", name="third").marshal()
    [image] = [r for r in step_reasons(lang.explain_rebuild(current, other), other.to_graph(),
                                       model(other, {"image busybox:1.36"})) if r["name"] == "image busybox:1.36"]
    assert image["status"] == "ran"


def test_the_reasons_panel_escapes_names_and_counts_what_ran():
    rows = [{"digest": "sha256:a", "name": "<b>make</b>", "status": "ran", "reason": "argv changed (<i>x</i>)"},
            {"digest": "sha256:b", "name": "image", "status": "cached", "reason": "served from cache"}]
    html = reasons_html(rows)
    assert "Rebuild reasons · 1 ran · 1 cached" in html and "<b>make" not in html and "&lt;b&gt;make" in html
    assert "&lt;i&gt;x&lt;/i&gt;" in html and html.count('class="envd-reason"') == 2
    assert reasons_text(rows).splitlines() == ["rebuild reasons: 1 ran · 1 cached",
                                               "  ran    <b>make</b> — argv changed (<i>x</i>)", "  cached image"]


def test_marks_outline_the_paused_vertex_dot_breakpoints_and_follow_folded_chains():
    graph = chain(20)
    layout = layout_graph(graph, collapse=5)
    [fold] = [node for node in layout["nodes"] if node.get("members")]
    inside = fold["members"][3]["id"]
    marks = {"current": inside, "breakpoints": ["sha256:c0"]}
    svg = render_svg(layout, {}, marks)
    assert f'data-id="{fold["id"]}" data-state="pending" data-paused="true"' in svg  # the fold holds the pause
    assert 'data-id="sha256:c0" data-state="pending" data-breakpoint="true"' in svg
    assert svg.count('class="envd-paused"') == 1 and svg.count('class="envd-breakpoint"') == 1
    assert ">paused here</text>" in svg and ">paused here</text>" not in render_svg(layout, {})
    text = dag_text(layout, {}, marks)
    assert "image busybox:latest  ● breakpoint" in text and text.count("◀ paused here") == 1
    beside = dag_html(layout, {}, marks, beside="<div id=reasons></div>")
    assert beside.index("<svg") < beside.index("<div id=reasons>")


def test_the_dag_widget_carries_marks_and_reasons_into_its_static_picture():
    widget = DAGWidget(chain(3), marks={"current": "sha256:c1", "breakpoints": []},
                       reasons=[{"digest": "sha256:c1", "name": "sh -c 'echo 1'", "status": "ran",
                                 "reason": NO_PREVIOUS}])
    bundle = widget.static_bundle()
    assert "◀ paused here" in bundle["text/plain"] and f"— {NO_PREVIOUS}" in bundle["text/plain"]
    assert 'data-paused="true"' in bundle["text/html"] and "Rebuild reasons · 1 ran · 0 cached" in bundle["text/html"]


def test_the_stepper_picture_shows_the_position_or_the_failure():
    facts = {"state_name": "walk", "status": "paused", "breakpoints": ["join"], "message": "", "failure": {},
             "position": {"index": 2, "total": 5, "name": "left", "digest": "sha256:l", "cached": True}}
    assert stepper_text(facts) == "stepper walk: paused at step 2/5: left (cached)\nbreakpoints: join"
    failed = {**facts, "status": "failed", "position": {**facts["position"], "cached": False},
              "failure": {"step": "<compile>", "exit_code": 3, "location": "cell[walk]:2",
                          "log_tail": ["</pre><script>x</script>"], "note": "Files below: before.\nexec: there."}}
    text = stepper_text(failed)
    assert "stepper walk: failed at step 2/5: left" in text and "✗ step '<compile>' failed with exit code 3" in text
    assert "  | </pre><script>x</script>" in text
    html = stepper_html(failed)
    assert "<script>" not in html and "&lt;/pre&gt;" in html and "Files below: before.<br>exec: there." in html
    assert "data-status='failed'" in html and "made by cell[walk]:2" in html
