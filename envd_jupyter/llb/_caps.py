"""LLB capability names and lowering a Definition for daemons that lack some of them.

A daemon advertises the caps it supports (gateway Ping / Info). ``lower_for(caps)``:

* MergeOp without ``mergeop`` becomes one FileOp that starts from the first input and
  copies every later input's "/" onto it (dir contents, create dest, wildcards allowed).
  Semantic difference: a real merge is an overlay of layers, so files *deleted* in a
  later input stay deleted only with mergeop; the copy chain keeps them, and the copy
  re-runs (no layer reuse) whenever any input changes.
* DiffOp without ``diffop`` has no lowering: MissingCapabilityError.
* Any other cap still missing afterwards raises MissingCapabilityError naming it (the
  daemon would reject the solve anyway).

Ops downstream of a rewritten op get new input digests, hence new digests themselves;
metadata and source locations follow them.
"""

from __future__ import annotations

import hashlib

from . import _wire
from ._op import CONSTRAINTS, OpMeta
from ._errors import MissingCapabilityError

FILE_BASE = "file.base"
MERGE_OP = "mergeop"
DIFF_OP = "diffop"

_COPY_ALL = (_wire.str_field(1, "/") + _wire.str_field(2, "/") + _wire.int_field(4, -1) + _wire.int_field(6, 1)
             + _wire.int_field(8, 1) + _wire.int_field(9, 1) + _wire.int_field(10, 1) + _wire.int_field(11, -1))


def _split_inputs(data: bytes) -> tuple[list[tuple[str, int]], bytes]:
    """The leading Op.inputs entries (Go writes them first) and the remaining bytes."""
    from envd_jupyter._proto import ops_pb2

    inputs, pos = [], 0
    while pos < len(data) and data[pos] == 0x0A:
        length, start = _read_varint(data, pos + 1)
        inp = ops_pb2.Input.FromString(data[start:start + length])
        inputs.append((inp.digest, inp.index))
        pos = start + length
    return inputs, data[pos:]


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if b < 0x80:
            return value, pos
        shift += 7


def _inputs_bytes(inputs) -> bytes:
    return b"".join(_wire.len_field(1, _wire.str_field(1, d) + _wire.int_field(2, i)) for d, i in inputs)


def _merge_as_copies(op, remap) -> bytes:
    merged = [(remap.get(op.inputs[m.input].digest, op.inputs[m.input].digest), op.inputs[m.input].index)
              for m in op.merge.inputs]
    inputs, index_of = [], {}
    for key in merged:
        if key not in index_of:
            index_of[key] = len(inputs)
            inputs.append(key)
    actions = []
    copies = merged[1:]
    for n, key in enumerate(copies):
        first = index_of[merged[0]] if n == 0 else len(inputs) + n - 1
        output = 0 if n == len(copies) - 1 else -1
        actions.append(_wire.len_field(2, _wire.int_field(1, first) + _wire.int_field(2, index_of[key])
                                       + _wire.int_field(3, output) + _wire.len_field(4, _COPY_ALL)))
    return _inputs_bytes(inputs) + CONSTRAINTS + _wire.len_field(4, b"".join(actions))


def minimum_caps(definition) -> frozenset[str]:
    """What a daemon must support for ``lower_for`` to succeed: the caps no lowering replaces.

    Schedulers use it to keep a build away from daemons that could never run it, while still
    sending merges to daemons that lack ``mergeop`` (they get the copy lowering).
    """
    caps = definition.required_caps
    if MERGE_OP in caps:
        caps = (caps - {MERGE_OP}) | {FILE_BASE}
    return caps


def lower_for(definition, caps):
    """A Definition that a daemon supporting ``caps`` accepts; see the module docstring."""
    from ._definition import Definition, SourceData

    caps = frozenset(caps)
    defs, digests, metadata, remap = [], [], {}, {}
    for dgst, data, op in zip(definition.digests, definition.defs, definition.ops):
        original = data
        kind = op.WhichOneof("op")
        meta = definition.metadata.get(dgst, OpMeta())
        if kind == "diff" and DIFF_OP not in caps:
            raise MissingCapabilityError("the daemon lacks 'diffop' and a diff has no lowering: use a newer daemon")
        if kind == "merge" and MERGE_OP not in caps:
            data = _merge_as_copies(op, remap)
            meta = OpMeta((meta.caps - {MERGE_OP}) | {"file.base"}, ignore_cache=meta.ignore_cache,
                          description=meta.description, export_cache=meta.export_cache,
                          progress_group=meta.progress_group)
        elif any(i.digest in remap for i in op.inputs):
            inputs, rest = _split_inputs(data)
            data = _inputs_bytes([(remap.get(d, d), i) for d, i in inputs]) + rest
        new = dgst if data is original else "sha256:" + hashlib.sha256(data).hexdigest()
        if new != dgst:
            remap[dgst] = new
        if new in metadata:
            metadata[new] = metadata[new].merged(meta)
            continue
        metadata[new] = meta
        defs.append(data)
        digests.append(new)
    source = definition.source
    if source is not None and remap:
        locations = {}
        for d, locs in source.locations.items():
            locations.setdefault(remap.get(d, d), []).extend(locs)
        source = SourceData(source.infos, locations)
    lowered = Definition(defs, metadata, source, digests=digests)
    missing = sorted(lowered.required_caps - caps)
    if missing:
        raise MissingCapabilityError(f"the daemon lacks LLB capabilities {', '.join(missing)}")
    return lowered
