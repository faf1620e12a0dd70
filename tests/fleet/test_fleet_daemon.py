"""The fleet on the real daemons: scheduling by caps, stages that stay open, shared vertices, exports."""

import uuid

import pytest

from envd_jupyter import buildkit, llb
from envd_jupyter.fleet import Fleet, FleetError

BUSYBOX = "envd-jupyter/busybox:latest"


@pytest.fixture
def fleet(daemon_env):
    with Fleet.from_project("flavours", daemon_env["ENVD_JUPYTER_STATE"]) as fleet:
        yield fleet


def test_a_diff_goes_to_the_only_daemon_with_diffop_and_its_stage_stays_readable(fleet):
    token = uuid.uuid4().hex
    base = llb.image(BUSYBOX)
    state = llb.merge([base, llb.diff(base, base.run(f"echo {token} > /token"))])
    seen = []
    stage = fleet.build(state, on_scheduled=lambda scheduling, definition: seen.append(definition))
    try:
        assert stage.builder == "current"
        assert stage.shared.result(timeout=120).startswith(fleet.shared_cache.registry), "merge + diff are shared too"
        record = stage.scheduling.records[0].to_dict()
        assert {"filter": "caps-filter", "removed": ["classic", "old"]} in record["filters"]
        assert seen and seen[0].digests == stage.definition.digests
        assert stage.read_file("/token") == f"{token}\n".encode()
        assert "token" in [entry.path for entry in stage.list_dir("/")]
        assert stage.step(token[:8]).name.endswith(f"echo {token} > /token")
    finally:
        stage.close()
    with pytest.raises(FleetError, match="ended"):
        stage.read_file("/token")


def test_a_step_another_open_stage_holds_counts_as_cached_not_ran(fleet):
    state = llb.image(BUSYBOX).run(f"echo {uuid.uuid4().hex}", name="shared step")
    first = fleet.build(state)
    try:
        assert [v.name for v in first.model.ran()] == ["shared step"]
        second = fleet.build(state.run("echo next", name="next step"))
        try:  # BuildKit shares the vertex the first stage still holds, replaying its timestamps
            assert [v.name for v in second.model.ran()] == ["next step"]
            assert "shared step" in [v.name for v in second.model.cached()]
        finally:
            second.close()
    finally:
        first.close()


def test_a_failing_step_is_a_solve_error_and_the_fleet_builds_on(fleet):
    with pytest.raises(buildkit.SolveError) as caught:
        fleet.build(llb.image(BUSYBOX).run("echo nope >&2; exit 4", name="fails"))
    assert caught.value.exit_code == 4 and caught.value.step == "fails" and caught.value.stage is None
    assert all(endpoint.in_flight == 0 for endpoint in fleet.endpoints())
    stage = fleet.build(llb.image(BUSYBOX).run(f"echo {uuid.uuid4().hex}"))
    stage.close()


def test_export_parses_the_notebook_spelling(fleet, tmp_path):
    token = uuid.uuid4().hex
    result = fleet.export(llb.image(BUSYBOX).run(f"mkdir /out && echo {token} > /out/f"), f"dir={tmp_path}/x")
    assert result.elapsed > 0 and (tmp_path / "x" / "out" / "f").read_text() == f"{token}\n"
    with pytest.raises(FleetError, match="image=NAME, dir=PATH or tar=FILE"):
        fleet.export(llb.image(BUSYBOX), "zip=/tmp/x")


def test_a_failed_build_hands_its_progress_model_to_the_caller(fleet):
    with pytest.raises(buildkit.SolveError) as caught:
        fleet.build(llb.image(BUSYBOX).run(f"echo {uuid.uuid4().hex}; exit 5", name="fails late"))
    assert [v.name for v in caught.value.model.failed()] == ["fails late"]


def test_a_command_in_a_stage_sees_its_steps_environment_and_leaves_it_unchanged(fleet):
    token = uuid.uuid4().hex
    state = (llb.image(BUSYBOX).run("mkdir -p /work").workdir("/work").env("GREETING", "hello")
             .user("nobody").run(f"echo {token} > /tmp/token"))
    stage = fleet.build(state)
    try:
        result = stage.exec(["sh", "-c", 'pwd; id -u; echo "$GREETING $EXTRA"; cat /tmp/token; touch /tmp/new'],
                            env={"EXTRA": "there"})
        assert result.ok and result.stdout.decode().splitlines() == ["/work", "65534", "hello there", token]
        assert stage.exec(["id", "-u"], user="root").stdout == b"0\n"
        assert "new" not in [entry.path for entry in stage.list_dir("/tmp")]
    finally:
        stage.close()
    with pytest.raises(FleetError, match="ended"):
        stage.exec(["true"])


@pytest.fixture
def one_builder(any_daemon):
    with Fleet.single(f"docker+unix://{any_daemon}") as fleet:
        yield fleet


def test_after_a_failed_step_the_stage_before_it_stays_open(one_builder):
    token = uuid.uuid4().hex
    state = (llb.image(BUSYBOX).run(f"echo {token} > /before", name="prepare")
             .workdir("/tmp").env("PHASE", "compile").run("echo partial > /after; exit 7", name="compile")
             .run("echo never", name="after compile"))
    with pytest.raises(buildkit.SolveError) as caught:
        one_builder.build(state, keep_on_failure=True)
    error = caught.value
    assert error.exit_code == 7 and error.step == "compile"
    stage = error.stage
    try:
        assert stage.note == "showing the filesystem before the failed step 'compile'"
        assert stage.read_file("/before") == f"{token}\n".encode()
        assert "after" not in [entry.path for entry in stage.list_dir("/")]
        result = stage.exec(["sh", "-c", 'pwd; echo "$PHASE"; cat /before; cat /after'])  # as the step ran
        if error.mounts:  # the daemon reported the failed step's filesystem: what it wrote before failing is there
            assert stage.exec_note == "running in the failed step 'compile''s own filesystem, as it was when it failed"
            assert result.stdout.decode().splitlines() == ["/tmp", "compile", token, "partial"]
        else:  # BuildKit 0.8: the filesystem before the step
            assert stage.exec_note == stage.note
            assert result.stdout.decode().splitlines() == ["/tmp", "compile", token] and result.exit_code == 1
        assert stage.model.failed() and stage.model.failed()[-1].name == "compile"
    finally:
        stage.close()
    one_builder.build(llb.image(BUSYBOX).run(f"echo {token}-next")).close()
