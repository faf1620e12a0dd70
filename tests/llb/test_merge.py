"""MergeOp, following Go client/llb v0.26.3 merge.go (Merge, MergeOp.Marshal)."""

from envd_jupyter import llb

from ._support import BUSYBOX, caps, head_op, marshal


def test_merge_inputs_in_order_without_platform():
    a = llb.scratch().mkfile("/a", "a")
    op, meta = head_op(llb.merge([BUSYBOX, a]))
    assert [m.input for m in op.merge.inputs] == [0, 1]
    assert len(op.inputs) == 2 and not op.HasField("platform") and op.HasField("constraints")
    assert caps(meta) == {"mergeop"}


def test_scratch_inputs_are_dropped():
    assert llb.merge([llb.scratch(), llb.scratch()]).is_scratch
    assert llb.merge([llb.scratch(), BUSYBOX]) is BUSYBOX
    op, _ = head_op(llb.merge([llb.scratch(), BUSYBOX, llb.scratch(), llb.image("alpine")]))
    assert len(op.merge.inputs) == 2


def test_same_input_twice_is_not_deduplicated():
    op, _ = head_op(llb.merge([BUSYBOX, BUSYBOX]))
    assert [i.digest for i in op.inputs][0] == [i.digest for i in op.inputs][1]
    assert [m.input for m in op.merge.inputs] == [0, 1]


def test_result_keeps_first_input_settings_and_state_merge():
    first = BUSYBOX.workdir("/first").env(A="1")
    merged = first.merge(llb.image("alpine").workdir("/second"))
    assert merged.get_workdir() == "/first" and merged.get_env("A") == "1"
    definition = marshal(merged)
    assert definition.op(definition.digests[-2]).WhichOneof("op") == "merge"
