"""A comparable view of each op in a Definition: kind, plain-dict body, inputs, name, user location."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envd_jupyter import llb

CUSTOM_NAME = "llb.customname"


@dataclass(frozen=True)
class OpView:
    digest: str
    kind: str  # exec | source | file | merge | diff | build | terminal
    body: dict
    inputs: tuple[str, ...]
    name: str
    location: llb.SourceLocation | None


def to_plain(message) -> Any:
    """A protobuf message as nested dicts/lists with bytes kept raw (set fields only)."""
    out = {}
    for fd, value in message.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            out[fd.name] = {k: to_plain(v) if hasattr(v, "ListFields") else v for k, v in value.items()}
        elif fd.is_repeated:
            out[fd.name] = [to_plain(v) if hasattr(v, "ListFields") else v for v in value]
        else:
            out[fd.name] = to_plain(value) if hasattr(value, "ListFields") else value
    return out


def op_views(definition) -> dict[str, OpView]:
    """Digest → OpView, in definition order; accepts a Definition, its bytes, or what marshals to one."""
    if isinstance(definition, (bytes, bytearray)):
        definition = llb.Definition.from_bytes(bytes(definition))
    elif not isinstance(definition, llb.Definition) and callable(getattr(definition, "marshal", None)):
        definition = definition.marshal()  # an llb.State, EnvdBuild or EnvdState
    if not isinstance(definition, llb.Definition):
        raise TypeError(f"expected an llb Definition, its bytes, or a State/build to marshal, got {type(definition).__name__}")
    views = {}
    for digest, op in zip(definition.digests, definition.ops):
        body = to_plain(op)
        inputs = tuple(i["digest"] for i in body.pop("inputs", []))
        body.pop("constraints", None)
        meta = definition.metadata.get(digest)
        name = (meta.description or {}).get(CUSTOM_NAME, "") if meta is not None else ""
        if not name and op.WhichOneof("op") == "source":
            name = op.source.identifier
        locs = definition.locations(digest)
        location = locs[0] if locs else None
        views[digest] = OpView(digest, op.WhichOneof("op") or "terminal", body, inputs, name, location)
    return views
