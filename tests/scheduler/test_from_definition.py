"""BuildRequest.from_definition: an llb Definition becomes the scheduler's plain request."""

from types import SimpleNamespace

import pytest

from envd_jupyter import llb
from envd_jupyter.scheduler import BuildRequest, Vertex

PLATFORM = "linux/amd64"
BASE = llb.image("busybox")


def digest(state) -> str:
    return state.marshal(platform=PLATFORM).head[0]


def test_branches_merge_and_diff_give_the_chain_keys_of_explicit_inputs():
    left, right = BASE.run("echo left"), BASE.run("echo right")
    merged = llb.merge([left, right])
    graph = llb.diff(BASE, merged)
    request = BuildRequest.from_definition(graph.marshal(platform=PLATFORM))

    by_hand = BuildRequest([
        Vertex(digest(BASE), "image"),
        Vertex(digest(left), "exec", inputs=(0,)),
        Vertex(digest(right), "exec", inputs=(0,)),
        Vertex(digest(merged), "merge", inputs=(1, 2)),
        Vertex(digest(graph), "diff", inputs=(0, 3)),
    ])
    assert dict(zip((v.digest for v in request.vertices), request.chain_keys)) == dict(
        zip((v.digest for v in by_hand.vertices), by_hand.chain_keys))
    assert {v.digest: v.kind for v in request.vertices} == {v.digest: v.kind for v in by_hand.vertices}


def test_input_positions_keep_op_order_and_repeats():
    left, right = BASE.run("echo left"), BASE.run("echo right")
    request = BuildRequest.from_definition(llb.merge([right, left, right]).marshal(platform=PLATFORM))
    position = {v.digest: n for n, v in enumerate(request.vertices)}
    merge = request.vertices[-1]
    assert merge.kind == "merge"
    assert merge.inputs == (position[digest(right)], position[digest(left)], position[digest(right)])
    assert all(p < position[merge.digest] for p in merge.inputs)


def test_kinds_and_minimum_caps():
    app = BASE.copy(llb.local("context", unique_id="u"), "app.py", "/app/")
    graph = llb.merge([app, llb.git("https://example.com/lib.git").run("make")])
    definition = graph.marshal(platform=PLATFORM)
    request = BuildRequest.from_definition(definition)
    assert sorted(v.kind for v in request.vertices) == ["exec", "file", "git", "image", "local", "merge"]
    assert request.required_caps == definition.minimum_caps
    assert "mergeop" not in request.required_caps and "file.base" in request.required_caps  # merges lower


def test_durations_platform_labels_and_id_pass_through():
    run = BASE.run("echo timed")
    request = BuildRequest.from_definition(run.marshal(platform=PLATFORM), durations={digest(run): 12.5},
                                           platform="linux/arm64", labels={"pool": "gpu"}, id="cell-4")
    assert [v.duration for v in request.vertices] == [None, 12.5]
    assert (request.platform, request.labels, request.id) == ("linux/arm64", {"pool": "gpu"}, "cell-4")


def test_any_object_with_vertices_and_minimum_caps_will_do():
    graph = SimpleNamespace(
        vertices=lambda: [SimpleNamespace(digest="sha256:a", kind="image", inputs=()),
                          SimpleNamespace(digest="sha256:b", kind="exec", inputs=("sha256:a",))],
        minimum_caps=frozenset({"exec.meta.base"}))
    request = BuildRequest.from_definition(graph)
    assert [v.inputs for v in request.vertices] == [(), (0,)] and request.required_caps == {"exec.meta.base"}


def test_an_input_that_is_not_an_earlier_vertex_is_refused():
    graph = SimpleNamespace(vertices=lambda: [SimpleNamespace(digest="sha256:b", kind="exec", inputs=("sha256:a",))],
                            minimum_caps=frozenset())
    with pytest.raises(ValueError, match="sha256:a, which is not an earlier vertex"):
        BuildRequest.from_definition(graph)


def test_vertex_without_inputs_is_a_root_and_none_no_longer_guesses():
    assert BuildRequest([Vertex("sha256:x"), Vertex("sha256:y")]).chain_keys[1] == BuildRequest(
        [Vertex("sha256:y")]).chain_keys[0]
    with pytest.raises(TypeError, match="inputs=None no longer means the previous vertex") as raised:
        Vertex("sha256:y", inputs=None)
    assert "\n" not in str(raised.value)
    assert Vertex("sha256:y", inputs=[0]).inputs == (0,)
