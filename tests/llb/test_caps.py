"""Capability lowering (Definition.lower_for)."""

import pytest

from envd_jupyter import llb

from ._support import BUSYBOX, go_order_bytes, marshal

ALL = frozenset({"source.image", "source.local", "source.local.unique", "exec.meta.base", "exec.mount.bind",
                 "file.base", "constraints", "platform", "mergeop", "diffop", "meta.description"})


def _graph():
    a = llb.scratch().mkfile("/a", "a")
    b = llb.scratch().mkfile("/b", "b")
    return llb.merge([BUSYBOX, a, b]).run(["ls"])


def test_nothing_changes_when_caps_suffice():
    definition = marshal(_graph())
    assert definition.lower_for(ALL).to_bytes() == definition.to_bytes()


def test_merge_becomes_one_copy_fileop_and_downstream_is_redigested():
    definition = marshal(_graph())
    lowered = definition.lower_for(ALL - {"mergeop"})
    kinds = [op.WhichOneof("op") for op in lowered.ops]
    assert kinds == ["source", "file", "file", "file", "exec", None]
    copy_op = lowered.ops[3]
    assert [(a.input, a.secondaryInput, a.output) for a in copy_op.file.actions] == [(0, 1, -1), (3, 2, 0)]
    c = copy_op.file.actions[0].copy
    assert (c.src, c.dest, c.mode, c.dirCopyContents, c.createDestPath, c.timestamp) == ("/", "/", -1, True, True, -1)
    assert lowered.op(lowered.digests[4]).inputs[0].digest == lowered.digests[3]
    assert lowered.digests[:3] == definition.digests[:3] and lowered.digests[3:] != definition.digests[3:]
    assert "mergeop" not in lowered.required_caps
    for data, op in zip(lowered.defs, lowered.ops):
        assert data == go_order_bytes(op)
    assert llb.Definition.from_bytes(lowered.to_bytes()).digests == lowered.digests


def test_lowering_keeps_source_locations():
    st = llb.merge([BUSYBOX, llb.image("alpine")], location=llb.SourceLocation("cell 1", 3))
    lowered = marshal(st).lower_for(ALL - {"mergeop"})
    assert [loc.line for loc in lowered.locations(lowered.head[0])] == [3]


def test_diff_without_diffop_has_no_lowering():
    definition = marshal(llb.diff(BUSYBOX, BUSYBOX.run(["x"])))
    with pytest.raises(llb.MissingCapabilityError, match="diffop"):
        definition.lower_for(ALL - {"diffop"})


def test_other_missing_caps_are_named():
    definition = marshal(BUSYBOX.run(["x"], mounts=[llb.tmpfs_mount("/t")]))
    with pytest.raises(llb.MissingCapabilityError, match="exec.mount.tmpfs"):
        definition.lower_for(ALL)


def test_minimum_caps_drop_what_lowering_replaces():
    definition = marshal(_graph())
    assert "mergeop" in definition.required_caps
    assert "mergeop" not in definition.minimum_caps and "file.base" in definition.minimum_caps
    lowered = definition.lower_for(definition.minimum_caps)
    assert lowered.required_caps <= definition.minimum_caps


def test_minimum_caps_keep_what_has_no_lowering():
    definition = marshal(llb.merge([BUSYBOX, llb.diff(BUSYBOX, BUSYBOX.run(["x"]))]))
    assert "diffop" in definition.minimum_caps
    with pytest.raises(llb.MissingCapabilityError):
        definition.lower_for(definition.minimum_caps - {"diffop"})
