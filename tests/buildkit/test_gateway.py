"""Interactive builds: solve to refs, read inside them between solves, then export the last one."""

from __future__ import annotations

import pytest

from envd_jupyter.buildkit._exports import LocalDir
from envd_jupyter.buildkit._gateway import GatewayError
from envd_jupyter.buildkit._session.localwalk import GO_MODE_DIR
from envd_jupyter.llb._source import image


def test_read_between_two_solves_then_export(any_client, busybox, network, tmp_path):
    base = image(busybox)
    out = tmp_path / "out"
    export = LocalDir(out)
    with any_client.interactive(exports=[export]) as build:
        first = build.solve(base.run("mkdir -p /work && printf 'one two three' > /work/a.txt", network=network))
        assert build.read_file(first, "/work/a.txt") == b"one two three"
        assert build.read_file(first, "/work/a.txt", offset=4, length=3) == b"two"
        assert [s.path for s in build.read_dir(first, "/work")] == ["a.txt"]
        assert build.stat(first, "/work").mode & GO_MODE_DIR

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


def test_error_in_block_ends_build_without_export(any_client, busybox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("kept")
    export = LocalDir(out)
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
        with pytest.raises(GatewayError, match="ReadFile"):
            build.read_file(ref, "/no/such/file")


def test_failing_solve_reports_inside_the_build(any_client, busybox, network):
    with any_client.interactive() as build:
        with pytest.raises(GatewayError, match="exit code: 3"):
            build.solve(image(busybox).run("exit 3", network=network))
        ok = build.solve(image(busybox))  # the build goes on after a failed step
        assert ok.stat("/bin").mode & GO_MODE_DIR
