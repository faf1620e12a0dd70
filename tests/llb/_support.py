"""Test helpers: an independent Go-order encoder and quick access to marshalled ops."""

from google.protobuf.internal.encoder import _VarintBytes

from envd_jupyter import llb

_KIND_FIELD = {"exec": 2, "source": 3, "file": 4, "build": 5, "merge": 6, "diff": 7}


def _field(number: int, payload: bytes) -> bytes:
    return _VarintBytes((number << 3) | 2) + _VarintBytes(len(payload)) + payload


def go_order_bytes(op) -> bytes:
    """Re-encode a parsed pb.Op with the Python protobuf runtime, in protobuf-go's order.

    protobuf-go writes Op's plain fields (inputs, platform, constraints) and then the
    oneof; every sub-message (FileAction's oneof already has the highest numbers) is
    ordered by field number, which the Python runtime does too.
    """
    out = b"".join(_field(1, i.SerializeToString(deterministic=True)) for i in op.inputs)
    if op.HasField("platform"):
        out += _field(10, op.platform.SerializeToString(deterministic=True))
    if op.HasField("constraints"):
        out += _field(11, op.constraints.SerializeToString(deterministic=True))
    kind = op.WhichOneof("op")
    if kind:
        out += _field(_KIND_FIELD[kind], getattr(op, kind).SerializeToString(deterministic=True))
    return out


def marshal(state, **kw):
    kw.setdefault("platform", "linux/amd64")
    kw.setdefault("local_unique_id", "fixed-unique-id")
    definition = state.marshal(**kw)
    for data, op in zip(definition.defs, definition.ops):
        assert data == go_order_bytes(op), "hand encoding differs from the protobuf runtime"
    return definition


def head_op(state, **kw):
    """(pb.Op, OpMeta) of the op that produces ``state``."""
    definition = marshal(state, **kw)
    digest, _ = definition.head
    return definition.op(digest), definition.metadata[digest]


def caps(meta) -> set:
    return set(meta.caps)


BUSYBOX = llb.image("docker.io/library/busybox:latest")
