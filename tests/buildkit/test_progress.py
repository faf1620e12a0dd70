"""BuildModel merging and the plain/TTY renderers, from recorded StatusResponse messages."""

import io

from envd_jupyter._proto import control_pb2
from envd_jupyter.buildkit import BuildModel, PlainRenderer, TtyRenderer

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
    assert not model.fully_cached and model.cached_count == 1


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


def test_live_events_reach_callback(docker_old, client_for, busybox, network, unique):
    seen = []
    out = io.StringIO()
    client_for(docker_old).solve(
        __import__("llbdefs").chain(busybox, [f"echo live-{unique}"], network=network),
        on_event=[seen.append, PlainRenderer(out)])
    kinds = {event.kind for event in seen}
    assert {"started", "log", "completed"} <= kinds
    assert f"live-{unique}" in out.getvalue() and " DONE " in out.getvalue()
