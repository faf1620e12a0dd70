"""Human-readable views of a Definition, shaped like ``buildctl debug dump-llb`` output.

JSON follows Go's encoding/json on BuildKit's generated structs: proto field names,
zero values omitted, set-but-empty messages as ``{}``, enums as numbers, bytes in
base64, map keys sorted, ``<``/``>``/``&`` escaped, and the custom shapes of
solver/pb/json.go for Op, FileAction and UserOpt.
"""

from __future__ import annotations

import base64
import json

from google.protobuf.descriptor import FieldDescriptor

from ._source import go_escape

_FILE_ACTIONS = ("copy", "mkfile", "mkdir", "rm")  # json.go has no symlink branch
_OP_KINDS = ("exec", "source", "file", "build", "merge", "diff")


def _string(s: str) -> str:
    return go_escape(json.dumps(s, ensure_ascii=False))


def _scalar(field, value) -> str:
    if field.type == FieldDescriptor.TYPE_STRING:
        return _string(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return '"' + base64.b64encode(value).decode() + '"'
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    return str(int(value))


def _is_map(field) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def _value(field, value) -> str:
    return _message(value) if field.type == FieldDescriptor.TYPE_MESSAGE else _scalar(field, value)


def _message(msg) -> str:
    name = msg.DESCRIPTOR.name
    if name == "Op":
        return _op(msg)
    if name == "FileAction":
        return _file_action(msg)
    if name == "UserOpt":
        return _user_opt(msg)
    parts = []
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if _is_map(field):
            if not value:
                continue
            vfield = field.message_type.fields_by_name["value"]
            items = ",".join(f"{_string(k)}:{_value(vfield, value[k])}" for k in sorted(value))
            parts.append(f'"{field.name}":{{{items}}}')
        elif field.is_repeated:
            if value:
                parts.append(f'"{field.name}":[' + ",".join(_value(field, v) for v in value) + "]")
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if msg.HasField(field.name):
                parts.append(f'"{field.name}":{_message(value)}')
        elif value:
            parts.append(f'"{field.name}":{_scalar(field, value)}')
    return "{" + ",".join(parts) + "}"


def _op(op) -> str:
    parts = []
    if op.inputs:
        parts.append('"inputs":[' + ",".join(_message(i) for i in op.inputs) + "]")
    kind = op.WhichOneof("op")
    parts.append('"Op":{' + (f'"{kind}":{_message(getattr(op, kind))}' if kind else "") + "}")
    if op.HasField("platform"):
        parts.append(f'"platform":{_message(op.platform)}')
    if op.HasField("constraints"):
        parts.append(f'"constraints":{_message(op.constraints)}')
    return "{" + ",".join(parts) + "}"


def _file_action(action) -> str:
    kind = action.WhichOneof("action")
    inner = f'"{kind}":{_message(getattr(action, kind))}' if kind in _FILE_ACTIONS else ""
    return (f'{{"input":{action.input},"secondaryInput":{action.secondaryInput},'
            f'"output":{action.output},"Action":{{{inner}}}}}')


def _user_opt(user) -> str:
    kind = user.WhichOneof("user")
    inner = ""
    if kind == "byName":
        inner = f'"byName":{_message(user.byName)}'
    elif kind == "byID" and user.byID:
        inner = f'"byId":{user.byID}'
    return f'{{"User":{{{inner}}}}}'


def to_json(definition) -> str:
    from envd_jupyter._proto import ops_pb2

    lines = []
    for dgst, op in zip(definition.digests, definition.ops):
        md = ops_pb2.OpMetadata()
        meta = definition.metadata.get(dgst)
        if meta is not None:
            md.ParseFromString(meta.encode())
        lines.append(f'{{"Op":{_op(op)},"Digest":{_string(dgst)},"OpMetadata":{_message(md)}}}\n')
    return "".join(lines)


def go_quote(s: str) -> str:
    """Go's %q for the strings dump-llb puts in dot files."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _label(dgst: str, op) -> tuple[str, str]:
    kind = op.WhichOneof("op")
    if kind == "source":
        return op.source.identifier, "ellipse"
    if kind == "exec":
        return " ".join(op.exec.meta.args), "box"
    if kind in ("build", "merge", "diff"):
        return kind, {"build": "box3d", "merge": "invtriangle", "diff": "doublecircle"}[kind]
    if kind == "file":
        names = []
        for a in op.file.actions:
            k = a.WhichOneof("action")
            if k == "copy":
                names.append(f"copy{{src={a.copy.src}, dest={a.copy.dest}}}")
            elif k == "symlink":
                names.append(f"symlink{{oldpath={a.symlink.oldpath}, newpath={a.symlink.newpath}}}")
            elif k in ("mkfile", "mkdir", "rm"):
                names.append(f"{k}{{path={getattr(a, k).path}}}")
            else:
                names.append("")
        return ",".join(names), "note"
    return dgst, "plaintext"


def to_dot(definition) -> str:
    lines = ["digraph {"]
    pairs = list(zip(definition.digests, definition.ops))
    for dgst, op in pairs:
        name, shape = _label(dgst, op)
        lines.append(f"  {go_quote(dgst)} [label={go_quote(name)} shape={go_quote(shape)}];")
    for dgst, op in pairs:
        for i, inp in enumerate(op.inputs):
            label = ""
            if op.WhichOneof("op") == "exec":
                for m in op.exec.mounts:
                    if m.input == i and m.dest != "/":
                        label = m.dest
            lines.append(f"  {go_quote(inp.digest)} -> {go_quote(dgst)} [label={go_quote(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
