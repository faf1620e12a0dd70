"""BuildModel merging, its JSON shapes and the plain/TTY renderers, from recorded StatusResponse messages."""

import io
import json
from importlib.resources import files

import jsonschema
import pytest

from envd_jupyter._proto import control_pb2
from envd_jupyter.buildkit import EVENT_SCHEMA_VERSION, BuildModel, PlainRenderer, TtyRenderer

T0 = 1_700_000_000


def _ts(msg, name, seconds):
    getattr(msg, name).FromNanoseconds(int((T0 + seconds) * 1e9))


def vertex(digest, name, *, started=None, completed=None, cached=False, error="", inputs=()):
    v = control_pb2.Vertex(digest=digest, name=name, cached=cached, error=error, inputs=list(inputs))
    if started is not None:
        _ts(v, "started", started)
    if completed is not None:
        _ts(v, "completed", completed)
    return v


def log(digest, at, data, stream=1):
    entry = control_pb2.VertexLog(vertex=digest, stream=stream, msg=data)
    _ts(entry, "timestamp", at)
    return entry


RECORDED = [
    control_pb2.StatusResponse(vertexes=[vertex("sha256:a", "docker-image://busybox"),
                                         vertex("sha256:b", "/bin/sh -c make", inputs=["sha256:a"])]),
    control_pb2.StatusResponse(vertexes=[vertex("sha256:a", "docker-image://busybox", started=0, completed=0.1,
                                                cached=True)]),
    control_pb2.StatusResponse(vertexes=[vertex("sha256:b", "/bin/sh -c make", started=0.2)]),
    control_pb2.StatusResponse(logs=[log("sha256:b", 0.323, b"compiling\npart"), log("sha256:b", 0.4, b"ial\n", 2)]),
    control_pb2.StatusResponse(vertexes=[vertex("sha256:b", "/bin/sh -c make", started=0.2, completed=0.65)]),
]


def test_model_merges_by_digest():
    model = BuildModel(source_digests=frozenset({"sha256:a"}))
    kinds = [event.kind for response in RECORDED for event in model.apply(response)]
    assert kinds == ["started", "cached", "started", "log", "log", "completed"]
    a, b = model.vertices["sha256:a"], model.vertices["sha256:b"]
    assert a.cached and a.done and b.inputs == ("sha256:a",)
    assert b.name == "/bin/sh -c make" and round(b.duration, 2) == 0.45
    assert b.log_tail() == ["compiling", "partial"]
    assert [c.stream for c in b.logs] == [1, 2]
    assert not model.fully_cached and model.cached() == [] and model.ran() == [b]


def test_plain_renderer_matches_buildctl_format():
    out = io.StringIO()
    model, render = BuildModel(), PlainRenderer(out)
    for response in RECORDED:
        for event in model.apply(response):
            render(event)
    assert out.getvalue() == (
        "#1 docker-image://busybox\n"
        "#1 CACHED\n"
        "\n"
        "#2 /bin/sh -c make\n"
        "#2 0.123 compiling\n"
        "#2 0.123 partial\n"
        "#2 DONE 0.5s\n"
    )


def test_plain_renderer_error_and_cancel_lines():
    out = io.StringIO()
    model, render = BuildModel(), PlainRenderer(out)
    responses = [
        control_pb2.StatusResponse(vertexes=[vertex("sha256:c", "/bin/sh -c false", started=0, completed=1,
                                                    error="exit code: 1")]),
        control_pb2.StatusResponse(vertexes=[vertex("sha256:d", "/bin/sh -c sleep 9", started=0, completed=1,
                                                    error="context canceled")]),
    ]
    for response in responses:
        for event in model.apply(response):
            render(event)
    assert "#1 ERROR: exit code: 1\n" in out.getvalue()
    assert out.getvalue().endswith("#2 /bin/sh -c sleep 9\n#2 CANCELED\n")


def test_status_counters_and_interleaving():
    out = io.StringIO()
    model, render = BuildModel(), PlainRenderer(out)
    status = control_pb2.VertexStatus(ID="sha256:layer", vertex="sha256:e", current=2_000_000, total=4_000_000)
    _ts(status, "started", 0)
    _ts(status, "timestamp", 1.5)
    _ts(status, "completed", 1.5)
    responses = [
        control_pb2.StatusResponse(vertexes=[vertex("sha256:e", "pull", started=0),
                                             vertex("sha256:f", "other", started=0)]),
        control_pb2.StatusResponse(statuses=[status]),
        control_pb2.StatusResponse(logs=[log("sha256:f", 12.5, b"x\n")]),
    ]
    for response in responses:
        for event in model.apply(response):
            render(event)
    assert model.vertices["sha256:e"].statuses["sha256:layer"].total == 4_000_000
    text = out.getvalue()
    assert "#1 sha256:layer 2.00MB / 4.00MB 1.5s done\n" in text
    assert "#1 ...\n\n#2 other\n#2 12.50 x\n" in text


def test_log_memory_is_capped_keeping_the_tail():
    model = BuildModel(log_cap=100)
    model.apply(control_pb2.StatusResponse(vertexes=[vertex("sha256:g", "noisy", started=0)]))
    for i in range(50):
        model.apply(control_pb2.StatusResponse(logs=[log("sha256:g", 1, f"line {i:02d}\n".encode())]))
    noisy = model.vertices["sha256:g"]
    assert noisy.log_bytes <= 100 and noisy.dropped_log_bytes == 50 * 8 - noisy.log_bytes
    assert noisy.log_tail(1) == ["line 49"]


def test_tty_renderer_redraws_in_place():
    out = io.StringIO()
    model, render = BuildModel(), TtyRenderer(out, interval=0)
    for response in RECORDED:
        for event in model.apply(response):
            render(event)
    frames = out.getvalue().split("\x1b[")
    assert len(frames) > 2, "later frames move the cursor up over the previous one"
    last = out.getvalue().rsplit("\x1b[J", 1)[-1]
    assert "(2/2)" in last and "CACHED" in last and "0.5s" in last


SCHEMA = json.loads((files("envd_jupyter.buildkit") / "events.schema.json").read_text())


def assert_valid(data, shape):
    """``data`` survives JSON and matches the schema as a whole and as the named shape."""
    assert json.loads(json.dumps(data)) == data
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    jsonschema.Draft202012Validator({**SCHEMA, "oneOf": [{"$ref": f"#/$defs/{shape}"}]}).validate(data)


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_model_and_events_as_data_match_the_schema():
    model, events = BuildModel(source_digests=frozenset({"sha256:a"})), []
    for response in RECORDED:
        for event in model.apply(response):
            events.append(event.to_dict())  # as a consumer sees it then, not after the solve
            assert_valid(events[-1], "event")
    assert [(e["kind"], e["vertex"]["state"]) for e in events] == [
        ("started", "cached"), ("cached", "cached"), ("started", "running"), ("log", "running"),
        ("log", "running"), ("completed", "done")]
    assert events[4]["log"] == {"stream": 2, "timestamp": T0 + 0.4, "text": "ial\n"}
    assert events[4]["digest"] == "sha256:b" and "log_tail" not in events[4]["vertex"]
    data = model.to_dict()
    assert_valid(data, "model")
    assert (data["version"], data["total"], data["cached"], data["ran"], data["failed"], data["done"]) == \
        (EVENT_SCHEMA_VERSION, 2, 0, 1, 0, True)
    b = data["vertices"][1]
    assert (b["index"], b["inputs"], b["log_tail"], b["log_bytes"]) == (2, ["sha256:a"], ["compiling", "partial"], 18)
    assert round(b["duration"], 2) == 0.45


def test_schema_refuses_shapes_that_break_the_contract():
    model = BuildModel()
    (event,) = model.apply(control_pb2.StatusResponse(logs=[log("sha256:h", 1, b"hi\n")]))
    good_event, good_model = event.to_dict(), model.to_dict()
    broken = [
        {**good_event, "vertex": {**good_event["vertex"], "log_tail": []}},  # events carry no tail
        {**good_event, "log": None},  # a log event without its log
        {**good_event, "vertex": {**good_event["vertex"], "state": "queued"}},
        {**good_model, "vertices": [{**good_model["vertices"][0], "log_tail": ["x"] * 11}]},
        {**good_model, "vertices": [{k: v for k, v in good_model["vertices"][0].items() if k != "log_tail"}]},
        {**good_model, "version": 2},
    ]
    for data in broken:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(SCHEMA).validate(data)


def test_vertex_states_from_pending_to_failed():
    model = BuildModel()
    model.apply(control_pb2.StatusResponse(vertexes=[
        vertex("sha256:p", "pending"), vertex("sha256:r", "running", started=0),
        vertex("sha256:d", "done", started=0, completed=1), vertex("sha256:c", "cached", started=0, completed=0,
                                                                   cached=True),
        vertex("sha256:f", "failed", started=0, completed=1, error="exit code: 2")]))
    data = model.to_dict()
    assert_valid(data, "model")
    assert [(v["name"], v["state"]) for v in data["vertices"]] == [
        ("pending", "pending"), ("running", "running"), ("done", "done"), ("cached", "cached"), ("failed", "failed")]
    assert [v.name for v in model.ran()] == ["running", "done", "failed"]
    assert [v.name for v in model.cached()] == ["cached"]
    assert (data["ran"], data["cached"], data["failed"], data["done"]) == (3, 1, 1, False)


def test_status_and_warning_events_as_data():
    model = BuildModel()
    status = control_pb2.VertexStatus(ID="sha256:layer", vertex="sha256:e", name="pulling", current=5, total=9)
    warning = control_pb2.VertexWarning(vertex="sha256:e", short=b"deprecated \xff")
    events = model.apply(control_pb2.StatusResponse(statuses=[status], warnings=[warning]))
    shapes = [event.to_dict() for event in events]
    for shape in shapes:
        assert_valid(shape, "event")
    assert shapes[0]["status"] == {"id": "sha256:layer", "name": "pulling", "current": 5, "total": 9,
                                   "completed": False}
    assert shapes[1]["warning"] == "deprecated \ufffd"
    assert model.to_dict()["vertices"][0]["statuses"] == [shapes[0]["status"]]


def test_log_text_is_decoded_with_replacement_and_the_tail_is_ten_lines():
    model = BuildModel()
    model.apply(control_pb2.StatusResponse(vertexes=[vertex("sha256:g", "noisy", started=0)]))
    lines = b"".join(f"line {i}\n".encode() for i in range(30))
    model.apply(control_pb2.StatusResponse(logs=[log("sha256:g", 1, lines), log("sha256:g", 2, b"bad \xc3(\n\n")]))
    (event,) = model.apply(control_pb2.StatusResponse(logs=[log("sha256:g", 3, b"\xe2\x82")]))
    assert event.to_dict()["log"]["text"] == "\ufffd"  # half a character: replaced, never an exception
    tail = model.to_dict()["vertices"][0]["log_tail"]
    assert tail == [f"line {i}" for i in range(23, 30)] + ["bad \ufffd(", "", "\ufffd"]


@pytest.mark.parametrize("chunks", [[b"a\nb\nc\n"], [b"a\n", b"b\n", b"c\n\n", b"\n"], [b"a", b"\nb", b"\nc"],
                                    [b"x" * 5, b"\na\nb", b"\n", b"c\n"]])
def test_log_tail_reads_only_what_it_needs_and_matches_the_whole_text(chunks):
    model = BuildModel()
    model.apply(control_pb2.StatusResponse(logs=[log("sha256:t", 1, chunk) for chunk in chunks]))
    state = model.vertices["sha256:t"]
    whole = state.log_text().rstrip("\n").splitlines()
    for lines in (1, 2, 3, 10):
        assert state.log_tail(lines) == whole[-lines:]


def test_live_events_reach_callback(docker_old, client_for, busybox, network, unique):
    seen = []
    out = io.StringIO()
    result = client_for(docker_old).solve(
        __import__("llbdefs").chain(busybox, [f"echo live-{unique}"], network=network),
        on_event=[lambda event: seen.append((event.kind, event.to_dict())), PlainRenderer(out)])
    kinds = {kind for kind, _ in seen}
    assert {"started", "log", "completed"} <= kinds
    assert f"live-{unique}" in out.getvalue() and " DONE " in out.getvalue()
    for _, shape in seen:
        assert_valid(shape, "event")
    assert_valid(result.model.to_dict(), "model")
    assert [v.name for v in result.model.ran()] == [f"/bin/sh -c echo live-{unique}"]


def test_a_vertex_done_before_the_build_began_was_shared_from_another_build_and_counts_as_cached():
    """BuildKit replays a vertex another open build holds, with that build's timestamps and no cached flag."""
    model = BuildModel(began=T0 + 10)
    events = model.apply(control_pb2.StatusResponse(vertexes=[
        vertex("sha256:old", "make", started=1, completed=2),  # finished by the other build
        vertex("sha256:new", "test", started=11, completed=12),  # ran in this one
        vertex("sha256:bad", "fail", started=1, completed=2, error="exit code: 1"),
    ]))
    assert [e.kind for e in events] == ["started", "started", "started", "cached", "completed", "error"]
    assert [v.name for v in model.cached()] == ["make"] and [v.name for v in model.ran()] == ["test", "fail"]
    unaware = BuildModel()
    unaware.apply(control_pb2.StatusResponse(vertexes=[vertex("sha256:old", "make", started=1, completed=2)]))
    assert unaware.ran() and not unaware.cached()
