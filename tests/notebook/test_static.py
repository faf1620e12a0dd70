"""Static SVG and HTML tables: well-formed, coloured by state, text escaped, plain-text fallbacks."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from envd_jupyter.notebook import layout_graph
from envd_jupyter.notebook._svg import STATE_STYLES, combined_state, dag_html, dag_text, render_svg
from envd_jupyter.notebook._tables import MAX_ROWS, progress_html, progress_text, scores_html, scores_text
from envd_jupyter.scheduler import BuildRequest, Endpoint, Scheduler, Vertex

from ._graphs import chain, graph, node, random_dag, two_branches, two_branches_model, vertex

SVG = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert('x')</script>&\"quote\""


def svg_nodes(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {g.get("data-id"): g for g in root.iter(f"{SVG}g") if g.get("class") == "envd-node"}


def test_svg_colours_each_vertex_by_its_state():
    model = two_branches_model()
    vertices = {v["digest"]: v for v in model["vertices"]}
    svg = render_svg(layout_graph(two_branches()), vertices)
    nodes = svg_nodes(svg)
    assert len(nodes) == 8
    for digest, element in nodes.items():
        state = vertices[digest]["state"]
        assert element.get("data-state") == state
        assert element.find(f"{SVG}rect").get("fill") == STATE_STYLES[state]["fill"]


def test_svg_without_states_is_all_pending_and_has_a_legend():
    svg = render_svg(layout_graph(two_branches()))
    assert {e.get("data-state") for e in svg_nodes(svg).values()} == {"pending"}
    legend = [t.text for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "envd-legend"
              for t in g.iter(f"{SVG}text")]
    assert legend == ["pending", "running", "cached", "done", "failed"]


def test_svg_labels_are_short_and_tooltips_hold_the_full_name():
    name = "[envd] pip install " + " ".join(f"pkg{i}" for i in range(30))
    svg = render_svg(layout_graph(graph([node("a", name)], [])), {"a": {"state": "done", "duration": 1.5}})
    element = svg_nodes(svg)["a"]
    title = element.find(f"{SVG}title").text
    assert title.startswith(name + "\n") and "exec · done · 1.50 s" in title and "cell-1:2" in title
    assert element.find(f"{SVG}text").text.endswith("…") and len(element.find(f"{SVG}text").text) < len(name)


@pytest.mark.parametrize(("states", "combined"), [
    (["done", "failed", "pending"], "failed"), (["done", "running", "pending"], "running"),
    (["done", "pending"], "pending"), (["cached", "done"], "done"), (["cached", "cached"], "cached"),
    ([], "pending"),
])
def test_a_folded_chain_combines_its_members_states(states, combined):
    assert combined_state(states) == combined


def test_a_folded_chain_is_drawn_with_its_combined_state_and_members_in_the_tooltip():
    layout = layout_graph(chain(20))
    vertices = {f"sha256:c{i}": "done" for i in range(10)} | {"sha256:c10": "running"}
    fold = svg_nodes(render_svg(layout, vertices))["chain:sha256:c1"]
    assert fold.get("data-state") == "running"
    assert "sh -c 'echo 18'" in fold.find(f"{SVG}title").text
    assert fold.find(f"{SVG}rect").get("stroke-dasharray")


def test_list_layout_draws_rows_and_says_why():
    layout = layout_graph(random_dag(50), collapse=None, max_nodes=10)
    svg = render_svg(layout, {"sha256:000000": "done"})
    assert len(svg_nodes(svg)) == 50 and "shown as a list" in svg
    assert svg_nodes(svg)["sha256:000000"].get("data-state") == "done"


def test_every_name_and_location_is_escaped_in_the_svg():
    nodes = [{"id": "a\"><script>", "kind": "exec", "name": EVIL, "location": EVIL, "attrs": {"args": EVIL}}]
    svg = render_svg(layout_graph(graph(nodes, [])), {"a\"><script>": {"state": "failed", "error": EVIL}})
    assert "<script" not in svg
    ET.fromstring(svg)  # still well-formed XML
    assert svg_nodes(svg)["a\"><script>"].find(f"{SVG}title").text.startswith(EVIL)


def test_dag_text_counts_states_and_names_failures():
    model = two_branches_model()
    text = dag_text(layout_graph(two_branches()), {v["digest"]: v for v in model["vertices"]})
    lines = text.splitlines()
    assert lines[0] == "DAG: 8 vertices — 3 pending, 2 cached, 2 done, 1 failed"
    assert len(lines) == 9 and any(line.split()[1:3] == ["failed", "exec"] and "apt-get install git" in line
                                   for line in lines[1:])
    assert len(dag_text(layout_graph(chain(100)), {}).splitlines()) <= 42
    assert dag_text(layout_graph(chain(20))).startswith("DAG: 20 vertices (3 shown, 1 chain folded)")


def test_dag_html_wraps_the_svg_in_a_scroll_box():
    html = dag_html(layout_graph(two_branches()))
    assert html.startswith('<div class="envd-static"') and "<svg" in html and "overflow:auto" in html


def test_progress_table_has_a_row_per_vertex_with_logs_and_errors():
    html = progress_html(two_branches_model())
    assert html.count("<tr>") == 1 + 8
    assert "8 vertices · 3 ran · 2 cached · 1 failed · stopped at [envd] apt-get install git" in html
    assert "E: Unable to locate package git" in html and "exit code: 100" in html and "4.25 s" in html
    assert html.count("✓") == 2


def test_progress_accepts_a_bare_vertex_list():
    vertices = two_branches_model(done=False)["vertices"]
    assert "8 vertices · 2 ran · 2 cached · 0 failed · running" in progress_html(vertices)


def test_progress_text_is_plain_and_shows_failure_logs_only():
    text = progress_text(two_branches_model())
    assert text.splitlines()[0] == "Build: 8 vertices · 3 ran · 2 cached · 1 failed · stopped at [envd] apt-get install git"
    assert "      | E: Unable to locate package git" in text and "Collecting pandas" not in text


def test_a_huge_progress_table_is_capped_but_keeps_failures():
    vertices = [vertex(f"d{i}", f"step {i}", "done", i) for i in range(MAX_ROWS + 100)]
    vertices[-1] = vertex("last", "the failing one", "failed", MAX_ROWS + 99)
    html = progress_html(vertices)
    assert html.count("<tr>") == 1 + MAX_ROWS and "the failing one" in html and "… 100 more vertices" in html


def test_progress_escapes_names_logs_and_errors():
    model = {"version": 1, "total": 1, "ran": 1, "cached": 0, "failed": 1, "done": True,
             "vertices": [vertex("a", EVIL, "failed", 1, error=EVIL, log_tail=[EVIL, "</pre><img src=x onerror=alert(1)>"])]}
    html = progress_html(model)
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html


def scheduling_result(evil: str = "builder-c"):
    config = """
plugins:
- {type: saturation-filter}
- {type: in-flight-scorer}
- {type: free-disk-scorer}
- {type: max-score-picker}
- {type: random-picker, name: rnd}
- {type: shadow-profile-handler, parameters: {primary: main, shadows: [alt]}}
schedulingProfiles:
- {name: main, plugins: [{pluginRef: saturation-filter}, {pluginRef: in-flight-scorer, weight: 2},
                         {pluginRef: free-disk-scorer}, {pluginRef: max-score-picker}]}
- {name: alt, plugins: [{pluginRef: in-flight-scorer}, {pluginRef: rnd}]}
"""
    endpoints = [Endpoint("builder-a", in_flight=1, disk_total_bytes=100 << 30, disk_free_bytes=60 << 30),
                 Endpoint("builder-b", disk_total_bytes=100 << 30, disk_free_bytes=20 << 30),
                 Endpoint(evil, in_flight=2, max_in_flight=2)]
    return Scheduler(config, seed=1).schedule(BuildRequest([Vertex("sha256:a")]), endpoints)


def test_scores_table_shows_raw_weighted_total_removals_pick_and_shadow():
    result = scheduling_result()
    html = scores_html(result)
    main = result.to_dict()["cycles"][0]
    assert "in-flight-scorer ×2" in html and "free-disk-scorer ×1" in html
    assert "removed by saturation-filter: builder-c" in html
    assert f"★ {result.endpoint.name}" in html and f"scheduled on {result.endpoint.name}" in html
    for endpoint, score in main["scores"].items():
        assert f"{score['scorers']['in-flight-scorer']['weighted']:.3g}</td>" in html
    assert "profile <b>alt</b> (shadow)" in html and "shadow profile alt picked" in html


def test_scores_accept_the_dict_a_record_or_records():
    result = scheduling_result()
    record = result.records[0].to_dict()
    assert scores_html(result.to_dict()) == scores_html(result)
    assert "removed by saturation-filter" in scores_html(record)
    assert scores_html([record]) == scores_html(record)
    assert scores_html(result.records).count("<table") == 2


def test_scores_text_has_the_pick_totals_and_shadow_verdict():
    result = scheduling_result()
    text = scores_text(result)
    assert text.splitlines()[0] == f"Scheduled on {result.endpoint.name} (profile main)"
    assert "removed by saturation-filter: builder-c" in text and "shadow alt: picked" in text


def test_scores_escape_endpoint_names():
    html = scores_html(scheduling_result(evil=EVIL))
    assert "<script" not in html and "&lt;script&gt;" in html
