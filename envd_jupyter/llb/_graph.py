"""Plain views of a Definition's ops: ``llb.Vertex`` and a JSON graph, no protobuf outside llb.

Every layer names op kinds with one vocabulary: image local git http oci (sources, by the
identifier's scheme), exec file merge diff build. A vertex's display name is the op's
``llb.customname`` (an exec's ``name=``, envd's "[envd] pip install …" labels), else a short
label; ``attrs`` carries the op's details as strings for a click-through view.

Secret values never reach a view: a secret env shows only its variable name, URLs lose their
``user:password@`` part, and mkfile data is left out.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ._op import SourceLocation

GRAPH_VERSION = 1
CUSTOM_NAME = "llb.customname"
NAME_WIDTH = 60

_SOURCE_KINDS = {"docker-image": "image", "local": "local", "git": "git", "http": "http", "https": "http",
                 "oci-layout": "oci"}
_SHELLS = {"sh", "bash", "ash", "dash", "zsh"}
_NETWORK = {1: "host", 2: "none"}
_MOUNT_TYPES = {0: "bind", 1: "secret", 2: "ssh", 3: "cache", 4: "tmpfs"}
_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")


@dataclass(frozen=True)
class Vertex:
    """One op of a Definition (the terminal op excluded) as plain data.

    ``inputs`` are input digests in the op's input order (a digest repeats when the op uses
    it twice); ``attrs`` is read-only.
    """

    digest: str
    kind: str
    name: str
    inputs: tuple[str, ...]
    locations: tuple[SourceLocation, ...] = ()
    attrs: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "attrs", MappingProxyType(dict(self.attrs)))


def vertices(definition) -> list[Vertex]:
    """Every op but the terminal one (always last), in definition order: inputs come first."""
    out = []
    for digest, op in zip(definition.digests[:-1], definition.ops):
        kind, label, attrs = _describe(op)
        meta = definition.metadata.get(digest)
        custom = (meta.description or {}).get(CUSTOM_NAME) if meta is not None else None
        if meta is not None and meta.ignore_cache:
            attrs["ignore cache"] = "true"
        out.append(Vertex(digest, kind, custom or _short(label), tuple(i.digest for i in op.inputs),
                          tuple(definition.locations(digest)), attrs))
    return out


def to_graph(definition) -> dict:
    """Nodes and edges (``index`` = the input's position in the target op), JSON-serialisable."""
    views = vertices(definition)
    head = definition.head
    return {
        "version": GRAPH_VERSION,
        "head": head[0] if head else None,
        "nodes": [{"id": v.digest, "kind": v.kind, "name": v.name,
                   "location": str(v.locations[0]) if v.locations else None, "attrs": dict(v.attrs)}
                  for v in views],
        "edges": [{"source": source, "target": v.digest, "index": index}
                  for v in views for index, source in enumerate(v.inputs)],
    }


def _describe(op) -> tuple[str, str, dict]:
    """(kind, label, attrs) of one pb.Op."""
    attrs = {}
    if op.HasField("platform"):
        p = op.platform
        attrs["platform"] = f"{p.OS}/{p.Architecture}" + (f"/{p.Variant}" if p.Variant else "")
    which = op.WhichOneof("op")
    kind, label = _DESCRIBERS[which](op, attrs)
    return kind, label, attrs


def _source(op, attrs) -> tuple[str, str]:
    identifier = without_credentials(op.source.identifier)
    scheme, _, rest = identifier.partition("://")
    kind = _SOURCE_KINDS.get(scheme, scheme)
    attrs["identifier"] = identifier
    for key in sorted(op.source.attrs):
        attrs[key] = without_credentials(op.source.attrs[key])
    if kind in ("image", "oci"):
        attrs["ref"] = rest
    if kind == "image":
        return kind, "image " + rest.removeprefix("docker.io/").removeprefix("library/")
    if kind == "http":
        return kind, "download " + identifier
    if kind == "oci":
        return kind, "oci-layout " + rest
    return kind, f"{kind} {rest}" if rest else identifier


def _exec(op, attrs) -> tuple[str, str]:
    execop, meta = op.exec, op.exec.meta
    attrs["args"] = shlex.join(meta.args)
    for key, value in (("cwd", meta.cwd), ("user", meta.user), ("hostname", meta.hostname)):
        if value:
            attrs[key] = value
    if meta.env:
        attrs["env"] = "\n".join(meta.env)
    if execop.secretenv:
        attrs["secret env"] = "\n".join(s.name for s in execop.secretenv)  # the variable, never the secret
    if execop.network:
        attrs["network"] = _NETWORK.get(execop.network, str(execop.network))
    if execop.security:
        attrs["security"] = "insecure"
    attrs["mounts"] = "\n".join(
        f"{m.dest} ({_MOUNT_TYPES.get(m.mountType, str(m.mountType))}{', readonly' if m.readonly else ''})"
        for m in execop.mounts)
    if meta.extraHosts:
        attrs["extra hosts"] = "\n".join(f"{h.Host}={h.IP}" for h in meta.extraHosts)
    if meta.validExitCodes:
        attrs["valid exit codes"] = " ".join(str(c) for c in meta.validExitCodes)
    return "exec", _command(list(meta.args))


def _command(args: list[str]) -> str:
    """The script of a ``sh -c`` command as the user wrote it, else the argv with the program's base name."""
    if not args:
        return "exec"
    program = posixpath.basename(args[0]) or args[0]
    if len(args) == 3 and program in _SHELLS and args[1] == "-c":
        return " ".join(args[2].split())
    return shlex.join([program, *args[1:]])


def _file(op, attrs) -> tuple[str, str]:
    actions = [_action(a) for a in op.file.actions]
    attrs["actions"] = "\n".join(actions)
    return "file", "; ".join(actions)


def _action(action) -> str:
    which = action.WhichOneof("action")
    if which == "copy":
        return f"copy {action.copy.src} → {action.copy.dest}"
    if which == "symlink":
        return f"symlink {action.symlink.newpath} → {action.symlink.oldpath}"
    if which in ("mkdir", "mkfile", "rm"):
        return f"{which} {getattr(action, which).path}"  # mkfile's data is never shown
    return "file action"


def _merge(op, attrs) -> tuple[str, str]:
    return "merge", f"merge ({len(op.merge.inputs)})"


def _diff(op, attrs) -> tuple[str, str]:
    for key, side in (("lower", op.diff.lower), ("upper", op.diff.upper)):
        attrs[key] = op.inputs[side.input].digest if 0 <= side.input < len(op.inputs) else "scratch"
    return "diff", "diff"


def _build(op, attrs) -> tuple[str, str]:
    for key in sorted(op.build.attrs):
        attrs[key] = without_credentials(op.build.attrs[key])
    return "build", "build"


_DESCRIBERS = {"source": _source, "exec": _exec, "file": _file, "merge": _merge, "diff": _diff, "build": _build}


def without_credentials(text: str) -> str:
    """A URL without its ``user:password@`` part; other text unchanged."""
    return _CREDENTIALS.sub(r"\1", text)


def _short(label: str) -> str:
    """One line of at most NAME_WIDTH characters."""
    text = " ".join(label.split())
    return text if len(text) <= NAME_WIDTH else text[:NAME_WIDTH - 1] + "…"
