"""Interactive builds: solve to refs, read inside them between solves, then export the last one."""

from __future__ import annotations

import threading
import pytest

from envd_jupyter.buildkit import FileStat, GatewayError, LocalDir, SolveCancelled, SolveError, SolveResult
from envd_jupyter.llb import SourceLocation, cache_mount, image

from test_faults import WAIT, _eventually, _procs_with


def test_read_between_two_solves_then_export(any_client, busybox, network, tmp_path):
    base = image(busybox)
    out = tmp_path / "out"
    export = LocalDir(out)
    with any_client.interactive(exports=[export]) as build:
        first = build.solve(base.run("mkdir -p /work && printf 'one two three' > /work/a.txt", network=network))
        assert build.read_file(first, "/work/a.txt") == b"one two three"
        assert build.read_file(first, "/work/a.txt", offset=4, length=3) == b"two"
        (entry,) = build.read_dir(first, "/work")
        assert isinstance(entry, FileStat) and entry.path == "a.txt" and entry.size == 13 and entry.is_file
        assert build.stat(first, "/work").is_dir and not build.stat(first, "/bin/sh").is_dir

        # A second solve in the same build, chosen from what the first one contained.
        words = build.read_file(first, "/work/a.txt").decode().split()
        second = build.solve(base.run(f"mkdir -p /work && echo {len(words)} > /work/count", network=network))
        assert second.read_file("/work/count") == b"3\n"
        assert [s.path for s in second.read_dir("/work", include="c*")] == ["count"]
        assert first.read_file("/work/a.txt") == b"one two three"  # the first ref is still readable
        build.set_result(second)

    assert export.ok is True
    assert (out / "work" / "count").read_text() == "3\n"
    assert not (out / "work" / "a.txt").exists()


def test_finish_returns_the_solve_result(any_client, busybox, network, unique, tmp_path):
    export = LocalDir(tmp_path / "out")
    with any_client.interactive(exports=[export], name=f"finish-{unique}") as build:
        ref = build.solve(image(busybox).run(f"echo {unique} > /done", network=network))
        result = build.finish(ref)
    assert isinstance(result, SolveResult) and result.ref == build.ref and result.model is build.model
    assert (tmp_path / "out" / "done").read_text() == f"{unique}\n" and export.ok is True


def test_error_in_block_ends_build_without_export(any_client, busybox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("kept")
    export = LocalDir(out, overwrite=True)
    with pytest.raises(ZeroDivisionError):
        with any_client.interactive(exports=[export]) as build:
            ref = build.solve(image(busybox))
            build.set_result(ref)
            1 / 0
    assert export.ok is False
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]


def test_reading_a_missing_file_is_a_clear_error(any_client, busybox):
    with any_client.interactive() as build:
        ref = build.solve(image(busybox))
        with pytest.raises(GatewayError, match="ReadFile /no/such/file"):
            build.read_file(ref, "/no/such/file")


def test_failing_step_raises_the_solve_error_client_solve_gives(any_client, busybox, network, unique):
    where = SourceLocation("build.envd", 7)
    with any_client.interactive() as build:
        with pytest.raises(SolveError) as caught:
            build.solve(image(busybox).run(f"echo last-{unique}; exit 3", network=network, location=where))
        error = caught.value
        assert error.exit_code == 3 and "exit 3" in error.step and error.log_tail == (f"last-{unique}",)
        assert error.location == "build.envd:7" and "(build.envd:7) failed with exit code 3" in str(error)
        assert build.solve(image(busybox)).stat("/bin").is_dir  # the build goes on after a failed step


def test_solve_many_runs_in_parallel_and_reports_each_ref(any_client, busybox, network, unique):
    """Each branch waits for a file the other writes into a shared cache mount: only parallel solves finish."""
    def branch(mine: str, other: str):
        script = f"touch /shared/{mine}; until [ -e /shared/{other} ]; do sleep 0.05; done; echo {mine}-{unique}"
        return image(busybox).run(script, network=network, mounts=[cache_mount("/shared", f"envd-test-{unique}")])

    branches = [branch("left", "right"), branch("right", "left")]
    with any_client.interactive() as build:
        refs = build.solve_many(branches, timeout=WAIT)
    assert [ref.cached for ref in refs] == [False, False] and all(ref.elapsed > 0 for ref in refs)
    with any_client.interactive() as build:
        assert [ref.cached for ref in build.solve_many(branches, timeout=WAIT)] == [True, True]


def test_solve_many_cancels_the_rest_when_one_fails(any_client, busybox, network, unique):
    marker = f"many-{unique}"
    with any_client.interactive() as build:
        with pytest.raises(SolveError) as caught:
            build.solve_many([image(busybox).run(f"sleep 4242; echo {marker}", network=network),
                              image(busybox).run("sleep 1; exit 5", network=network)])
        assert caught.value.exit_code == 5
        _eventually(lambda: not _procs_with(marker), "the sibling solve is cancelled on the daemon")
        assert build.solve(image(busybox)).id  # the build goes on


def test_cancel_from_another_thread_ends_the_build(any_client, busybox, network, unique):
    marker = f"build-cancel-{unique}"
    builds = []

    def cancel_when_running(event):
        if event.kind == "log" and f"started-{marker}".encode() in event.log.data:
            threading.Thread(target=builds[0].cancel).start()

    with any_client.interactive(on_event=cancel_when_running) as build:
        builds.append(build)
        with pytest.raises(SolveCancelled):
            build.solve(image(busybox).run(f"echo started-{marker}; sleep 4242; echo {marker}", network=network))
    _eventually(lambda: not _procs_with(marker), "the step is cancelled on the daemon")
