"""DiffOp, following Go client/llb v0.26.3 diff.go (Diff, DiffOp.Marshal)."""

import pytest

from envd_jupyter import llb

from ._support import BUSYBOX, caps, head_op


def test_diff_lower_upper():
    upper = BUSYBOX.run(["touch", "/x"])
    op, meta = head_op(llb.diff(BUSYBOX, upper))
    assert (op.diff.lower.input, op.diff.upper.input) == (0, 1)
    assert op.diff.HasField("lower") and not op.HasField("platform")
    assert caps(meta) == {"diffop"}


def test_diff_with_scratch_upper_uses_minus_one():
    op, _ = head_op(llb.diff(BUSYBOX, llb.scratch()))
    assert (op.diff.lower.input, op.diff.upper.input) == (0, -1) and len(op.inputs) == 1


def test_diff_shortcuts():
    assert llb.diff(llb.scratch(), llb.scratch()).is_scratch
    assert llb.diff(llb.scratch(), BUSYBOX) is BUSYBOX


def test_diff_result_keeps_lower_settings():
    assert llb.diff(BUSYBOX.workdir("/low"), llb.image("alpine").workdir("/up")).get_workdir() == "/low"


def test_diff_needs_states():
    with pytest.raises(llb.NotAStateError, match="diff upper must be an llb State"):
        llb.diff(BUSYBOX, "alpine")
