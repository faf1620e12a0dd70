"""Secret values a solve offers are masked in what the daemon sends back (issue 17 item 7): logs, split over
chunks or not, step errors, warnings and the solve's error. A real build prints its secret in
tests/notebook/test_secret_outputs.py; here a hostile Status stream splits it every way it can."""

from __future__ import annotations

import time

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from envd_jupyter._proto import control_pb2
from envd_jupyter.buildkit import BuildModel, SolveError
from envd_jupyter.buildkit._mask import SecretMask, secret_values
from envd_jupyter.buildkit._session.secrets import Secret

SECRET = b"hunter2-correct-horse"
STEP = "sha256:step"


def _logs(*chunks: bytes, stream: int = 1) -> control_pb2.StatusResponse:
    return control_pb2.StatusResponse(logs=[control_pb2.VertexLog(vertex=STEP, stream=stream, msg=chunk)
                                            for chunk in chunks])


def _vertex(*, completed: bool = False, error: str = "") -> control_pb2.StatusResponse:
    now = Timestamp()
    now.FromNanoseconds(time.time_ns())
    vertex = control_pb2.Vertex(digest=STEP, name="prints it", started=now, error=error)
    if completed:
        vertex.completed.CopyFrom(now)
    return control_pb2.StatusResponse(vertexes=[vertex])


def _shown(events) -> bytes:
    return b"".join(event.log.data for event in events if event.kind == "log")


@pytest.mark.parametrize("cut", range(1, len(SECRET)))
def test_a_value_split_over_two_chunks_is_masked_whole(cut):
    model = BuildModel(mask=SecretMask([SECRET]))
    events = model.apply(_vertex())
    events += model.apply(_logs(b"token: " + SECRET[:cut]))
    events += model.apply(_logs(SECRET[cut:] + b" done\n"))
    events += model.apply(_vertex(completed=True))
    assert _shown(events) == b"token: *** done\n"
    assert model.vertices[STEP].log_text() == "token: *** done\n"


def test_a_held_end_that_was_no_secret_is_shown_when_the_step_ends():
    model = BuildModel(mask=SecretMask([SECRET]))
    events = model.apply(_vertex()) + model.apply(_logs(b"almost hunter2-"))
    assert _shown(events) == b"almost "  # the rest may begin the secret
    events += model.apply(_vertex(completed=True))
    assert _shown(events) == b"almost hunter2-"
    assert [e.kind for e in events][-2:] == ["log", "completed"]


def test_streams_are_masked_apart_and_lines_of_a_multiline_value_too():
    key = b"-----BEGIN KEY-----\nAAAAsecretline1\nBBBBsecretline2\n-----END KEY-----\n"
    model = BuildModel(mask=SecretMask([key]))
    events = model.apply(_vertex()) + model.apply(_logs(key, stream=1)) + model.apply(
        _logs(b"partial: BBBBsecretline2\n", stream=2)) + model.apply(_vertex(completed=True))
    shown = _shown(events)
    assert b"secretline" not in shown and shown.count(b"***") == 2


def test_errors_and_warnings_from_the_daemon_are_masked():
    model = BuildModel(mask=SecretMask([SECRET]))
    model.apply(_vertex(error=f"process failed: {SECRET.decode()} not accepted"))
    model.apply(control_pb2.StatusResponse(warnings=[control_pb2.VertexWarning(vertex=STEP, short=SECRET)]))
    vertex = model.vertices[STEP]
    assert vertex.error == "process failed: *** not accepted" and vertex.warnings == ["***"]


def test_the_solves_error_is_masked():
    import grpc

    from envd_jupyter.buildkit._failure import explain

    class Failed(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.UNKNOWN

        def details(self):
            return f"executor failed: {SECRET.decode()}"

    error = explain(Failed(), address="test", model=BuildModel(mask=SecretMask([SECRET])))
    assert isinstance(error, SolveError) and SECRET.decode() not in str(error) + error.detail


def test_which_values_are_masked(monkeypatch, tmp_path):
    monkeypatch.setenv("ENVD_MASK_TEST", "from-the-environment")
    (tmp_path / "secret.txt").write_bytes(b"from-a-file\n")
    values = secret_values({"env": Secret(env="ENVD_MASK_TEST"), "file": tmp_path / "secret.txt",
                            "bytes": b"given", "short": b"abc", "unreadable": Secret(file=tmp_path / "none")})
    mask = SecretMask(values)
    assert mask.text("from-the-environment from-a-file given abc") == "*** *** *** abc"  # under 4 bytes: kept
    assert not SecretMask([]) and BuildModel().mask.bytes(SECRET) == SECRET
