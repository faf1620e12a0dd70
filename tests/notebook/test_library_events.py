"""The widgets fed by the library's own progress objects: BuildModel, VertexEvent, EventCoalescer."""

from __future__ import annotations

from envd_jupyter._proto import control_pb2
from envd_jupyter.buildkit import BuildModel, EventCoalescer
from envd_jupyter.notebook import DAGWidget, ProgressWidget

from ._graphs import graph, node


def status(*vertices: control_pb2.Vertex, logs: tuple[tuple[str, bytes], ...] = ()) -> control_pb2.StatusResponse:
    return control_pb2.StatusResponse(vertexes=list(vertices),
                                      logs=[control_pb2.VertexLog(vertex=d, stream=1, msg=m) for d, m in logs])


def vertex(digest: str, name: str, *, started: int | None = None, completed: int | None = None,
           cached: bool = False, error: str = "") -> control_pb2.Vertex:
    message = control_pb2.Vertex(digest=digest, name=name, cached=cached, error=error)
    if started is not None:
        message.started.FromSeconds(started)
    if completed is not None:
        message.completed.FromSeconds(completed)
    return message


def solve(model: BuildModel) -> list:
    """A three-step solve: a cached base, a step that logs and succeeds, a step that fails."""
    responses = [
        status(vertex("sha256:a", "image busybox", started=100, completed=100, cached=True)),
        status(vertex("sha256:b", "sh -c 'echo hi'", started=101)),
        status(logs=(("sha256:b", b"hel"), ("sha256:b", b"lo\nworld\n"))),
        status(vertex("sha256:b", "sh -c 'echo hi'", started=101, completed=103)),
        status(vertex("sha256:c", "sh -c 'exit 3'", started=103)),
        status(logs=(("sha256:c", b"about to fail\n"),)),
        status(vertex("sha256:c", "sh -c 'exit 3'", started=103, completed=104, error="exit code: 3")),
    ]
    return [event for response in responses for event in model.apply(response)]


def three_steps() -> dict:
    nodes = [node("sha256:a", "image busybox", "image"), node("sha256:b", "sh -c 'echo hi'"),
             node("sha256:c", "sh -c 'exit 3'")]
    return graph(nodes, [("sha256:a", "sha256:b"), ("sha256:b", "sha256:c")])


def test_vertex_events_through_a_coalescer_reach_the_dag_widget():
    model, widget = BuildModel(), DAGWidget(three_steps())
    with EventCoalescer(widget.apply_events, max_per_second=1000) as coalescer:
        for event in solve(model):
            coalescer(event)
    widget.flush()
    states = {digest: v["state"] for digest, v in widget.vertices.items()}
    assert states == {"sha256:a": "cached", "sha256:b": "done", "sha256:c": "failed"}
    assert widget.vertices["sha256:b"]["log_tail"] == ["hello", "world"]
    assert widget.vertices["sha256:c"]["error"] == "exit code: 3"
    assert widget.vertices["sha256:b"]["duration"] == 2.0


def test_a_live_build_model_object_feeds_the_progress_widget():
    model, widget = BuildModel(), ProgressWidget()
    solve(model)
    widget.update_model(model)
    widget.flush()
    expected = model.to_dict()
    assert widget.summary == {**{k: expected[k] for k in ("total", "cached", "ran", "failed", "done")},
                              "line": "3 vertices · 2 ran · 1 cached · 1 failed · stopped at sh -c 'exit 3'"}
    assert [v["log_tail"] for v in widget.vertices] == [v["log_tail"] for v in expected["vertices"]]
    text = widget._repr_mimebundle_()[0]["text/plain"]
    assert "failed" in text and "      | about to fail" in text and "error: exit code: 3" in text
