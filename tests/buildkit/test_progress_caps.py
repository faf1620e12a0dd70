"""A hostile Status stream cannot make the model grow without bound (issue 17 item 6); each cap is noted once."""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema

from envd_jupyter._proto import control_pb2
from envd_jupyter.buildkit import BuildModel
from envd_jupyter.buildkit._progress import CAPPED_DIGEST, MAX_STATUSES, MAX_WARNINGS


def _vertices(count: int, prefix: str = "v") -> control_pb2.StatusResponse:
    return control_pb2.StatusResponse(vertexes=[control_pb2.Vertex(digest=f"sha256:{prefix}{i}", name=f"step {i}")
                                                for i in range(count)])


def _warnings(events) -> list[str]:
    return [event.warning for event in events if event.kind == "warning"]


def test_vertices_past_the_cap_are_dropped_with_one_note():
    model = BuildModel(max_vertices=50)
    events = model.apply(_vertices(80)) + model.apply(_vertices(80, prefix="w"))
    assert len([v for v in model.vertices if v != CAPPED_DIGEST]) == 50
    assert _warnings(events) == ["more than 50 steps reported: the rest are not kept"]
    note = model.vertices[CAPPED_DIGEST]
    assert note.state == "done" and note.name == "[envd] progress capped"
    assert model.ran() == [] and model.cached() == []  # the note is no step
    schema = json.loads(files("envd_jupyter.buildkit").joinpath("events.schema.json").read_text())
    jsonschema.validate(model.to_dict(), schema)
    for event in events[-3:]:
        jsonschema.validate(event.to_dict(), schema)


def test_statuses_and_warnings_per_vertex_are_capped():
    model = BuildModel()
    model.apply(_vertices(1))
    statuses = control_pb2.StatusResponse(statuses=[control_pb2.VertexStatus(ID=f"s{i}", vertex="sha256:v0")
                                                    for i in range(MAX_STATUSES + 500)])
    warnings = control_pb2.StatusResponse(warnings=[control_pb2.VertexWarning(vertex="sha256:v0", short=b"w")
                                                    for _ in range(MAX_WARNINGS + 50)])
    events = model.apply(statuses) + model.apply(warnings)
    vertex = model.vertices["sha256:v0"]
    assert len(vertex.statuses) == MAX_STATUSES
    assert len(vertex.warnings) == MAX_WARNINGS + 1  # the notes count among the kept ones, the last is over
    assert [w for w in _warnings(events) if w.startswith("more than")] == [
        f"more than {MAX_STATUSES} progress counters: the rest are not kept",
        f"more than {MAX_WARNINGS} warnings: the rest are not kept"]
    updated = control_pb2.StatusResponse(statuses=[control_pb2.VertexStatus(ID="s0", vertex="sha256:v0", current=7)])
    model.apply(updated)
    assert vertex.statuses["s0"].current == 7  # counters already kept still update


def test_logs_are_capped_over_the_build_keeping_the_newest():
    model = BuildModel(log_budget=64 * 1024, max_log_chunks=1000)
    model.apply(_vertices(10))
    events = []
    for round_no in range(200):
        logs = [control_pb2.VertexLog(vertex=f"sha256:v{i}", msg=b"%d-%d\n" % (round_no, i) + b"x" * 500)
                for i in range(10)]
        events += model.apply(control_pb2.StatusResponse(logs=logs))
    kept = sum(v.log_bytes for v in model.vertices.values())
    assert kept <= 64 * 1024
    assert sum(len(v.logs) for v in model.vertices.values()) <= 1000
    assert all(model.vertices[f"sha256:v{i}"].log_tail(1)[0].startswith("x") for i in range(10))
    assert model.vertices["sha256:v9"].log_text().startswith("1")  # the oldest rounds went first
    assert b"199-9" in b"".join(c.data for c in model.vertices["sha256:v9"].logs)
    notes = [w for w in _warnings(events) if w.startswith("more than")]
    assert notes == ["more than 0 MiB or 1000 messages of logs: the oldest are dropped"]


def test_empty_log_messages_are_not_kept():
    model = BuildModel()
    model.apply(_vertices(1))
    model.apply(control_pb2.StatusResponse(logs=[control_pb2.VertexLog(vertex="sha256:v0") for _ in range(10_000)]))
    assert len(model.vertices["sha256:v0"].logs) == 0
