"""The layout's structure: layers, spacing, edges, chain folding and the list fallback (never times)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envd_jupyter.notebook import layout_graph
from envd_jupyter.notebook._layout import LABEL_CHARS, NODE_GAP

from ._graphs import chain, graph, node, random_dag, two_branches


def by_id(layout: dict) -> dict[str, dict]:
    return {n["id"]: n for n in layout["nodes"]}


def assert_well_formed(layout: dict) -> None:
    nodes = by_id(layout)
    for edge in layout["edges"]:
        source, target = nodes[edge["source"]], nodes[edge["target"]]
        assert target["layer"] > source["layer"], edge
        points = edge["points"]
        assert points[0] == [source["x"] + source["width"] / 2, source["y"] + source["height"]]
        assert points[-1] == [target["x"] + target["width"] / 2, target["y"]]
        assert all(a[1] < b[1] for a, b in zip(points, points[1:])), "an edge goes up"
    layers: dict[int, list[dict]] = {}
    for n in layout["nodes"]:
        layers.setdefault(n["layer"], []).append(n)
        assert n["x"] >= 0 and n["y"] >= 0
        assert n["x"] + n["width"] <= layout["width"] + 1e-6
        assert n["y"] + n["height"] <= layout["height"] + 1e-6
    for row in layers.values():
        row.sort(key=lambda n: n["x"])
        assert len({n["y"] for n in row}) == 1
        for left, right in zip(row, row[1:]):
            assert left["x"] + left["width"] + NODE_GAP <= right["x"] + 1e-6, (left["id"], right["id"])


def test_two_branches_layers_inputs_above_their_consumers():
    layout = layout_graph(two_branches())
    assert layout["mode"] == "dag" and layout["reason"] == ""
    layer = {n["id"]: n["layer"] for n in layout["nodes"]}
    assert layer == {"sha256:base": 0, "sha256:a1": 1, "sha256:b1": 1, "sha256:ctx": 1, "sha256:a2": 2,
                     "sha256:b2": 2, "sha256:m": 3, "sha256:t": 4}
    assert_well_formed(layout)
    assert by_id(layout)["sha256:t"]["head"] and not by_id(layout)["sha256:m"]["head"]


def test_a_source_sits_just_above_its_first_consumer():
    nodes = [node("a", "a"), node("b", "b"), node("c", "c"), node("late", "local context", "local")]
    layout = layout_graph(graph(nodes, [("a", "b"), ("b", "c"), ("late", "c")]), collapse=None)
    assert by_id(layout)["late"]["layer"] == 1


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 160), st.integers(0, 10_000))
def test_random_build_graphs_are_well_formed(count, seed):
    layout = layout_graph(random_dag(count, seed), collapse=None)
    assert len(layout["nodes"]) == count
    assert_well_formed(layout)


def crossings(layout: dict) -> int:
    placed = by_id(layout)
    centre = {i: n["x"] + n["width"] / 2 for i, n in placed.items()}
    edges = [(centre[e["source"]], centre[e["target"]]) for e in layout["edges"]]
    return sum(1 for i, (a, b) in enumerate(edges) for c, d in edges[i + 1:] if (a - c) * (b - d) < 0)


def test_ordering_removes_a_crossing_the_input_order_has():
    # Input (topological) order puts d before c in layer 1, so a→c crosses b→d until the top layer moves.
    nodes = [node("a", "a"), node("b", "b"), node("e", "e"), node("c", "c"), node("d", "d")]
    layout = layout_graph(graph(nodes, [("a", "c"), ("e", "c"), ("b", "d")]))
    assert crossings(layout) == 0
    assert_well_formed(layout)


def test_repeated_inputs_draw_one_edge_that_counts_them():
    nodes = [node("a", "a"), node("m", "merge", "merge")]
    layout = layout_graph(graph(nodes, [("a", "m"), ("a", "m")]))
    assert [(e["source"], e["target"], e["count"]) for e in layout["edges"]] == [("a", "m", 2)]


def test_edges_to_unknown_vertices_are_ignored():
    layout = layout_graph(graph([node("a", "a")], [("missing", "a")]))
    assert layout["edges"] == [] and len(layout["nodes"]) == 1


def test_a_cycle_still_lays_out_every_vertex():
    nodes = [node("a", "a"), node("b", "b"), node("c", "c")]
    layout = layout_graph(graph(nodes, [("a", "b"), ("b", "c"), ("c", "b")]), collapse=None)
    assert {n["id"] for n in layout["nodes"]} == {"a", "b", "c"}
    assert all(e["points"] for e in layout["edges"])


def test_long_names_get_short_labels_and_keep_the_full_name():
    name = "pip install " + " ".join(f"package-{i}" for i in range(20))
    layout = layout_graph(graph([node("a", name)], []))
    only = layout["nodes"][0]
    assert only["name"] == name and len(only["label"]) == LABEL_CHARS and only["label"].endswith("…")


def test_chains_longer_than_collapse_fold_between_their_ends():
    layout = layout_graph(chain(30), collapse=12)
    assert [n["id"] for n in layout["nodes"]] == ["sha256:c0", "chain:sha256:c1", "sha256:c29"]
    fold = layout["nodes"][1]
    assert fold["kind"] == "chain" and fold["name"] == "… 28 steps"
    assert [m["id"] for m in fold["members"]] == [f"sha256:c{i}" for i in range(1, 29)]
    assert layout["chains"] == [{"id": "chain:sha256:c1", "count": 28, "collapsed": True}]
    assert [(e["source"], e["target"]) for e in layout["edges"]] == [
        ("sha256:c0", "chain:sha256:c1"), ("chain:sha256:c1", "sha256:c29")]
    assert_well_formed(layout)


@pytest.mark.parametrize(("length", "folded"), [(12, False), (13, True)])
def test_collapse_is_the_longest_chain_left_open(length, folded):
    layout = layout_graph(chain(length), collapse=12)
    assert (len(layout["nodes"]) == 3) is folded


def test_an_expanded_chain_is_laid_out_whole_and_still_listed():
    layout = layout_graph(chain(30), collapse=12, expanded=["chain:sha256:c1"])
    assert len(layout["nodes"]) == 30 and layout["mode"] == "dag"
    assert layout["chains"] == [{"id": "chain:sha256:c1", "count": 28, "collapsed": False}]
    assert [n.get("chain") for n in layout["nodes"]] == [None] + ["chain:sha256:c1"] * 28 + [None]
    assert_well_formed(layout)


def test_collapse_none_never_folds():
    assert len(layout_graph(chain(40), collapse=None)["nodes"]) == 40


def test_branches_stop_a_chain():
    nodes = [node(f"s{i}", f"s{i}") for i in range(20)] + [node("side", "side")]
    edges = [(f"s{i - 1}", f"s{i}") for i in range(1, 20)] + [("s9", "side")]
    layout = layout_graph(graph(nodes, edges), collapse=5)
    folds = [n for n in layout["nodes"] if n["kind"] == "chain"]
    assert [len(f["members"]) for f in folds] == [8, 8]  # s1..s8 and s11..s18: s9 has two consumers
    assert_well_formed(layout)


def test_folding_happens_before_the_size_limit():
    layout = layout_graph(chain(3000), max_nodes=2000)
    assert layout["mode"] == "dag" and len(layout["nodes"]) == 3


def test_past_max_nodes_the_layout_is_a_list_in_topological_order():
    layout = layout_graph(random_dag(300, seed=7), collapse=None, max_nodes=100)
    assert layout["mode"] == "list" and "300 vertices" in layout["reason"]
    order = {n["id"]: i for i, n in enumerate(layout["nodes"])}
    assert len(order) == 300
    assert all(order[e["source"]] < order[e["target"]] and e["points"] == [] for e in layout["edges"])
    tops = [n["y"] for n in layout["nodes"]]
    assert all(a + layout["nodes"][0]["height"] <= b for a, b in zip(tops, tops[1:]))


def test_five_thousand_vertices_fall_back_to_a_list_by_default():
    assert layout_graph(random_dag(5000, seed=1))["mode"] == "list"


def test_a_fan_of_long_edges_stays_bounded_and_downward():
    nodes = [node("ctx", "local context", "local"), node("s0", "image", "image")]
    edges = []
    for i in range(1, 400):
        nodes.append(node(f"s{i}", f"copy {i}", "file"))
        edges += [(f"s{i - 1}", f"s{i}"), ("ctx", f"s{i}")]
    layout = layout_graph(graph(nodes, edges), collapse=None)
    assert layout["mode"] == "dag" and "drawn straight" in layout["reason"]
    assert_well_formed(layout)


def test_empty_graph():
    layout = layout_graph({"version": 1, "head": None, "nodes": [], "edges": []})
    assert layout["nodes"] == [] and layout["edges"] == [] and layout["mode"] == "dag"
