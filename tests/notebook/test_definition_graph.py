"""The layout and the DAG widget over a real ``llb.Definition.to_graph()``."""

from __future__ import annotations

from envd_jupyter import llb
from envd_jupyter.notebook import DAGWidget, layout_graph

from .test_layout import assert_well_formed


def two_branch_definition(steps: int = 2) -> llb.Definition:
    base = llb.image("busybox:latest")
    left, right = base, base
    for i in range(steps):
        left = left.run(["sh", "-c", f"echo left {i} > /left{i}"])
        right = right.run(["sh", "-c", f"echo right {i} > /right{i}"])
    return llb.merge([left, right]).run(["sh", "-c", "ls /"]).marshal(platform="linux/amd64")


def test_a_real_definition_lays_out_with_its_display_names():
    graph = two_branch_definition().to_graph()
    layout = layout_graph(graph)
    assert_well_formed(layout)
    names = {n["name"] for n in layout["nodes"]}
    assert len(layout["nodes"]) == len(graph["nodes"]) == 7
    assert {"echo left 0 > /left0", "ls /"} <= names, names
    head = [n for n in layout["nodes"] if n["head"]]
    assert [n["name"] for n in head] == ["ls /"] and head[0]["layer"] == max(n["layer"] for n in layout["nodes"])


def test_long_branches_of_a_real_definition_fold_and_expand():
    widget = DAGWidget(two_branch_definition(steps=20).to_graph(), collapse=12)
    folds = [n for n in widget.graph_layout["nodes"] if n["kind"] == "chain"]
    assert [len(f["members"]) for f in folds] == [18, 18]  # each branch keeps its first and last run
    widget.expanded = [folds[0]["id"]]
    assert len(widget.graph_layout["nodes"]) == 1 + 20 + 3 + 1 + 1  # base, open branch, folded branch, merge, ls
    assert_well_formed(widget.graph_layout)
