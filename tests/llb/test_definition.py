"""Definition: parsing, validation of foreign bytes, required caps."""

import pytest

from envd_jupyter import llb
from envd_jupyter.llb import _wire

from ._support import BUSYBOX, marshal


def test_from_bytes_round_trip_and_walk():
    st = llb.merge([BUSYBOX.run(["a"]), llb.local("ctx", unique_id="u").mkdir("/d")])
    definition = marshal(st)
    parsed = llb.Definition.from_bytes(definition.to_bytes())
    assert parsed.digests == definition.digests and parsed.to_bytes() == definition.to_bytes()
    merge_digest = parsed.head[0]
    assert [d for d, _ in parsed.inputs(merge_digest)] == [parsed.digests[1], parsed.digests[3]]
    assert parsed.metadata == definition.metadata


def test_required_caps_is_the_union_of_op_caps():
    definition = marshal(BUSYBOX.run(["a"], mounts=[llb.cache_mount("/c", "c")]).mkdir("/x"))
    assert definition.required_caps == {
        "source.image", "exec.meta.base", "exec.mount.bind", "exec.mount.cache", "exec.mount.cache.sharing",
        "file.base", "constraints", "platform"}


def test_garbage_is_a_definition_error():
    with pytest.raises(llb.DefinitionError):
        llb.Definition.from_bytes(b"\xff\xff\xff")


def test_input_used_before_definition_is_rejected():
    definition = marshal(BUSYBOX.run(["a"]))
    reordered = [definition.defs[1], definition.defs[0], definition.defs[2]]
    data = b"".join(_wire.len_field(1, d) for d in reordered)
    with pytest.raises(llb.DefinitionError, match="before it is defined"):
        llb.Definition.from_bytes(data)


def test_missing_terminal_is_rejected():
    definition = marshal(BUSYBOX.run(["a"]))
    data = b"".join(_wire.len_field(1, d) for d in definition.defs[:-1])
    with pytest.raises(llb.DefinitionError, match="terminal"):
        llb.Definition.from_bytes(data)


def test_empty_definition():
    parsed = llb.Definition.from_bytes(b"")
    assert len(parsed) == 0 and parsed.head is None and parsed.required_caps == frozenset()
