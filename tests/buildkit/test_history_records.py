"""How daemon history records and provenance become HistoryRecord / HistoryStep (pure: protobuf messages in)."""

from __future__ import annotations

import pytest

from envd_jupyter._proto import control_pb2
from envd_jupyter.buildkit._history import _steps_from_config, record_from_proto


def record(**fields) -> control_pb2.BuildHistoryRecord:
    message = control_pb2.BuildHistoryRecord(Ref="r1", numTotalSteps=4, numCachedSteps=1, numCompletedSteps=4)
    message.CreatedAt.FromSeconds(100)
    for key, value in fields.items():
        if key == "completed":
            message.CompletedAt.FromSeconds(value)
        elif key == "error":
            message.error.CopyFrom(control_pb2.RpcStatus(code=value[0], message=value[1]))
        elif key == "attrs":
            message.FrontendAttrs.update(value)
        else:
            setattr(message, key, value)
    return message


@pytest.mark.parametrize("fields, status", [
    ({}, "running"),
    ({"completed": 101}, "ok"),
    ({"completed": 101, "error": (2, "process did not complete successfully: exit code: 3")}, "failed"),
    ({"completed": 101, "error": (1, "canceled")}, "cancelled"),
    ({"completed": 101, "error": (2, "rpc error: context canceled")}, "cancelled"),
])
def test_status_from_completion_and_error(fields, status):
    assert record_from_proto(record(**fields)).status == status


def test_an_error_is_one_bounded_line():
    converted = record_from_proto(record(completed=101, error=(2, "\n  first line\nsecond line " + "x" * 500)))
    assert converted.error == "first line" and converted.created == 100.0 and converted.completed == 101.0
    long = record_from_proto(record(completed=101, error=(2, "y" * 1_000)))
    assert len(long.error) == 300 and long.error.endswith("…")


@pytest.mark.parametrize("attrs, frontend, name", [
    ({"build-arg:BUILDKIT_BUILD_NAME": "a.ipynb: app", "filename": "Dockerfile"}, "", "a.ipynb: app"),
    ({"filename": "Dockerfile"}, "dockerfile.v0", "Dockerfile"),
    ({"filename": "ci.Dockerfile", "target": "test"}, "", "ci.Dockerfile (test)"),
    ({}, "gateway.v0", "gateway.v0"),
    ({}, "", ""),
])
def test_names_from_the_build_name_else_the_dockerfile(attrs, frontend, name):
    assert record_from_proto(record(attrs=attrs, Frontend=frontend)).name == name


def test_provenance_steps_keep_kinds_summaries_and_inputs_but_no_env_or_credentials():
    config = {
        "llbDefinition": [
            {"id": "step0", "op": {"Op": {"source": {"identifier": "https://user:pw@example.com/f.tgz"}}}},
            {"id": "step1", "op": {"Op": {"exec": {"meta": {"args": ["/bin/sh", "-c", "make"],
                                                            "env": ["TOKEN=visible-in-llb"]}}}},
             "inputs": ["step0:0"]},
            {"id": "step2", "op": {"Op": {"file": {"actions": [{"Action": {"mkfile": {"path": "/a", "data": "eA=="}}},
                                                               {"Action": {"copy": {"src": "/x", "dest": "/y"}}}]}}},
             "inputs": ["step1:0"]},
            {"id": "step3", "op": {"Op": None}, "inputs": ["step2:0"]},
        ],
        "digestMapping": {"sha256:a": "step0", "sha256:b": "step1", "sha256:c": "step2", "sha256:d": "step3"},
    }
    steps = _steps_from_config(config)
    assert [(s.digest, s.kind, s.summary, s.inputs) for s in steps] == [
        ("sha256:a", "http", "https://example.com/f.tgz", ()),
        ("sha256:b", "exec", "/bin/sh -c make", ("sha256:a",)),
        ("sha256:c", "file", "mkfile /a; copy /x /y", ("sha256:b",)),
    ]
    assert "visible-in-llb" not in repr(steps) and "pw" not in repr(steps)
    assert steps[1].to_dict() == {"digest": "sha256:b", "kind": "exec", "summary": "/bin/sh -c make",
                                  "inputs": ["sha256:a"]}
    assert _steps_from_config({}) == []
