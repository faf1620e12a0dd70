"""Solves on the real daemons: logs, full cache on rerun, failing RUN, request shapes, sessions."""

import pytest

from envd_jupyter.buildkit import Caps, CapsError, SolveError, connect
from envd_jupyter.buildkit._request import build_request, prepare_definition

from llbdefs import chain


def test_solve_streams_logs_by_vertex(any_client, busybox, network, unique):
    marker = unique  # unique per test run, so this step is never cached
    definition = chain(busybox, [f"echo out-{marker}; echo err-{marker} >&2"], network=network)
    result = any_client.solve(definition)
    (step,) = [v for v in result.model.vertices.values() if "echo out" in v.name]
    streams = {chunk.stream: chunk.data for chunk in step.logs}
    assert f"out-{marker}".encode() in streams[1] and f"err-{marker}".encode() in streams[2]
    assert step.done and not step.cached and not step.error
    assert not result.model.fully_cached


def test_second_run_is_fully_cached(any_client, busybox, network, unique):
    steps = [f"echo {i} {unique} > /step{i}" for i in range(3)]
    definition = chain(busybox, steps, network=network)
    first = any_client.solve(definition)
    second = any_client.solve(definition)
    assert not first.model.fully_cached
    assert second.model.fully_cached
    assert len(second.model.cached()) >= 3 and second.model.ran() == []


def test_failing_run_names_step_exit_code_and_last_lines(any_client, busybox, network, unique):
    script = f"echo first-{unique}; echo last words; exit 7"
    with pytest.raises(SolveError) as info:
        any_client.solve(chain(busybox, [script], network=network))
    error = info.value
    assert error.exit_code == 7
    assert "exit 7" in error.step
    assert error.log_tail[-1] == "last words"
    first_line = str(error).splitlines()[0]
    assert "exit code 7" in first_line and "exit 7" in first_line
    assert error._render_traceback_()[0].startswith("SolveError: step")


def test_solve_over_control_session_stream(docker_current, client_for, busybox, network, unique):
    """A unix:// (buildkitd-style) client carries its session in Control.Session, not /session."""
    proxied = client_for(docker_current)
    with connect(f"unix://{proxied.transport.channel_target}") as direct:
        assert direct.transport.uses_control_session
        result = direct.solve(chain(busybox, [f"echo via-control-{unique}"], network=network))
    assert any(b"via-control" in v.log_text().encode() for v in result.model.vertices.values())


class _Export:
    def __init__(self, type_):
        self.type, self.attrs, self.finished = type_, {"name": "x"}, None

    def session_services(self, exporter_id):
        return ()

    def finish(self, ok, response):
        self.finished = ok


def test_request_shape_follows_exporter_caps():
    new, old = Caps(frozenset({"exporter.multiple"}), frozenset()), Caps(frozenset(), frozenset())
    one, two = [_Export("moby")], [_Export("moby"), _Export("tar")]
    request = build_request("r", "s", b"", two, new)
    assert [e.Type for e in request.Exporters] == ["moby", "tar"] and request.ExporterDeprecated == "moby"
    request = build_request("r", "s", b"", one, old)
    assert not request.Exporters and request.ExporterDeprecated == "moby"
    assert dict(request.ExporterAttrsDeprecated) == {"name": "x"}
    with pytest.raises(CapsError, match="one result per solve"):
        build_request("r", "s", b"", two, old)


class _Definition:
    def __init__(self, required):
        self.required_caps = required

    def to_bytes(self):
        return b""


def test_missing_caps_fail_before_sending():
    with pytest.raises(CapsError, match="mergeop"):
        prepare_definition(_Definition({"mergeop", "source.image"}), frozenset({"source.image"}))
    assert prepare_definition(_Definition({"source.image"}), frozenset({"source.image"})) == b""


def test_export_finish_reports_failure(docker_old, client_for, busybox, network):
    export = _Export("tar")
    export.attrs = {}
    with pytest.raises(SolveError):
        client_for(docker_old).solve(chain(busybox, ["exit 3"], network=network), exports=[export])
    assert export.finished is False


def _merge_build(busybox, unique, network):
    from envd_jupyter import llb

    base = llb.image(busybox)
    net = {"sandbox": {}, "host": {"network": "host"}, "none": {"network": "none"}}[network]
    left = base.run(["sh", "-c", f"echo left-{unique} > /left"], **net)
    right = base.run(["sh", "-c", f"echo right-{unique} > /right"], **net)
    return llb.merge([left, right]).run(["sh", "-c", "cat /left /right"], **net)


def test_merge_runs_on_buildkit_0_8_via_lowering(docker_old, client_for, busybox, network, unique):
    result = client_for(docker_old).solve(_merge_build(busybox, unique, network))
    names = [v.name for v in result.model.vertices.values()]
    assert not any(name.startswith("merge") for name in names), "0.8 has no MergeOp: lowered to copies"
    (final,) = [v for v in result.model.vertices.values() if v.name.endswith("cat /left /right")]
    assert final.log_tail() == [f"left-{unique}", f"right-{unique}"]


def test_merge_is_sent_as_is_where_supported(docker_current, client_for, busybox, network, unique):
    result = client_for(docker_current).solve(_merge_build(busybox, unique, network))
    assert any(v.name.startswith("merge") for v in result.model.vertices.values())


def test_diff_on_buildkit_0_8_fails_before_sending(docker_old, client_for, busybox):
    from envd_jupyter import llb

    base = llb.image(busybox)
    with pytest.raises(CapsError, match="diffop"):
        client_for(docker_old).solve(llb.diff(base, base.run(["true"])))


def test_failing_step_points_at_the_users_line(any_client, busybox, network, unique):
    from envd_jupyter import llb

    net = {} if network == "sandbox" else {"network": network}
    where = llb.SourceLocation("build.envd", 12)
    state = llb.image(busybox).run(["sh", "-c", f"echo {unique}; exit 4"], location=where, **net)
    with pytest.raises(SolveError) as info:
        any_client.solve(state)
    assert info.value.location == "build.envd:12"
    assert "(build.envd:12) failed with exit code 4" in str(info.value).splitlines()[0]
    assert info.value.log_tail == (unique,)


def test_unsendable_request_still_finishes_exports(docker_old, client_for, busybox):
    exports = [_Export("tar"), _Export("local")]
    with pytest.raises(CapsError):
        client_for(docker_old).solve(chain(busybox, ["true"]), exports=exports)
    assert [e.finished for e in exports] == [False, False]


def test_garbage_is_refused_before_sending(docker_old, client_for):
    from envd_jupyter.buildkit import InvalidDefinitionError

    client = client_for(docker_old)
    with pytest.raises(InvalidDefinitionError, match="not an LLB Definition"):
        client.solve(b"\xff garbage")
    with pytest.raises(InvalidDefinitionError, match="expected a State, Definition or bytes"):
        client.solve(42)


def test_missing_image_names_the_source_step(any_client):
    with pytest.raises(SolveError) as info:
        any_client.solve(chain("envd-jupyter/no-such-image:latest", ["true"]))
    assert info.value.step == "docker-image://docker.io/envd-jupyter/no-such-image:latest"
    assert info.value.exit_code is None


def test_two_exports_share_one_session_on_current(docker_current, client_for, busybox, network, unique, tmp_path):
    """BuildKit >= 0.13 takes an Exporters list; both file receivers merge into one FileSend service."""
    from envd_jupyter.buildkit import LocalDir, Tarball

    exports = [LocalDir(tmp_path / "out"), Tarball(tmp_path / "out.tar")]
    client_for(docker_current).solve(chain(busybox, [f"echo {unique} > /hello"], network=network), exports=exports)
    assert (tmp_path / "out" / "hello").read_text().strip() == unique
    import tarfile

    with tarfile.open(tmp_path / "out.tar") as archive:
        assert archive.extractfile("hello").read().decode().strip() == unique


def test_a_failing_event_callback_cancels_and_surfaces(docker_old, client_for, busybox, network, unique):
    """The solve is cancelled and the callback's error raised (tests/buildkit/test_callbacks.py covers more)."""
    def broken(event):
        raise RuntimeError("widget exploded")

    seen = []
    with pytest.raises(RuntimeError, match="widget exploded"):
        client_for(docker_old).solve(chain(busybox, [f"echo {unique}"], network=network), on_event=[broken, seen.append])
    assert seen, "the other callbacks kept receiving events"
