"""Definition: a marshalled graph (pb.Definition) — bytes, digests, metadata, source maps.

Made by ``State.marshal()`` or parsed by ``Definition.from_bytes``; either way the op
bytes are kept verbatim, so digests and ``to_bytes()`` are exactly what the daemon sees.
"""

from __future__ import annotations

import hashlib

from . import _graph, _wire
from ._graph import Vertex
from ._op import OpMeta, SourceLocation, encode_input
from ._errors import DefinitionError


def _position(pos) -> bytes:
    line, char = pos
    return _wire.int_field(1, line) + _wire.int_field(2, char)


class SourceData:
    """pb.Source: the source files and, for every op digest, its locations in them."""

    __slots__ = ("infos", "locations")

    def __init__(self, infos, locations):
        self.infos = infos  # [(filename, data, language, nested definition bytes or None)]
        self.locations = locations  # digest -> [(source index, [(start, end)])], positions (line, char) or None

    @classmethod
    def collect(cls, digests, events) -> "SourceData":
        """Go's sourceMapCollector: one info per distinct source, every op digest keyed."""
        infos, index_of = [], {}
        locations = {d: [] for d in digests}
        for dgst, loc in events:
            key = loc.source_key()
            idx = index_of.get(key)
            if idx is None:
                idx = index_of[key] = len(infos)
                infos.append((loc.filename, loc.data or b"", loc.language, None))
            locations[dgst].append((idx, [((loc.line, loc.column), (loc.end_line, loc.end_column))]))
        return cls(infos, locations)

    def encode(self) -> bytes:
        entries = {}
        for dgst, locs in self.locations.items():
            body = b""
            for idx, ranges in locs:
                rbytes = b""
                for start, end in ranges:
                    r = (b"" if start is None else _wire.len_field(1, _position(start))) + (
                        b"" if end is None else _wire.len_field(2, _position(end)))
                    rbytes += _wire.len_field(2, r)
                body += _wire.len_field(1, _wire.int_field(1, idx) + rbytes)
            entries[dgst] = body
        out = _wire.msg_map(1, entries)
        for filename, data, language, nested in self.infos:
            info = _wire.str_field(1, filename) + _wire.bytes_field(2, data)
            if nested is not None:
                info += _wire.len_field(3, nested)
            out += _wire.len_field(2, info + _wire.str_field(4, language))
        return out

    @classmethod
    def from_pb(cls, src) -> "SourceData":
        infos = [(i.filename, i.data, i.language,
                  i.definition.SerializeToString(deterministic=True) if i.HasField("definition") else None)
                 for i in src.infos]
        locations = {}
        for dgst, locs in src.locations.items():
            locations[dgst] = [
                (loc.sourceIndex, [((r.start.line, r.start.character) if r.HasField("start") else None,
                                    (r.end.line, r.end.character) if r.HasField("end") else None)
                                   for r in loc.ranges])
                for loc in locs.locations]
        return cls(infos, locations)


def _meta_from_pb(md) -> OpMeta:
    pg = md.progress_group
    return OpMeta(
        [c for c, on in md.caps.items() if on],
        ignore_cache=md.ignore_cache,
        description=dict(md.description) or None,
        export_cache=md.export_cache.Value if md.HasField("export_cache") else None,
        progress_group=(pg.id, pg.name, pg.weak) if md.HasField("progress_group") else None,
    )


class Definition:
    """An ordered list of op bytes (the terminal op last) plus per-digest metadata."""

    def __init__(self, defs, metadata, source, *, digests=None):
        self.defs: list[bytes] = defs
        self.metadata: dict[str, OpMeta] = metadata
        self.source: SourceData | None = source
        self.digests: list[str] = digests if digests is not None else [
            "sha256:" + hashlib.sha256(d).hexdigest() for d in defs]
        self._ops = None
        self._bytes = None

    # -- bytes ----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Deterministic pb.Definition bytes (maps sorted by key), as Go writes them."""
        if self._bytes is None:
            out = b"".join(_wire.len_field(1, d) for d in self.defs)
            out += _wire.msg_map(2, {d: m.encode() for d, m in self.metadata.items()})
            if self.source is not None:
                out += _wire.len_field(3, self.source.encode())
            self._bytes = out
        return self._bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> "Definition":
        """Parse pb.Definition bytes; checks that every input is defined before it is used."""
        from envd_jupyter._proto import ops_pb2

        pb = ops_pb2.Definition()
        try:
            pb.ParseFromString(bytes(data))
        except Exception as exc:  # the protobuf runtime raises DecodeError or RuntimeError
            raise DefinitionError(f"not a pb.Definition: {exc}") from None
        defs = list(getattr(pb, "def"))  # "def" is a Python keyword
        definition = cls(defs, {d: _meta_from_pb(m) for d, m in pb.metadata.items()},
                         SourceData.from_pb(pb.Source) if pb.HasField("Source") else None)
        definition._check()
        return definition

    def _check(self) -> None:
        seen = set()
        ops = self.ops
        for n, (dgst, op) in enumerate(zip(self.digests, ops)):
            for inp in op.inputs:
                if inp.digest not in seen:
                    raise DefinitionError(f"op {n} ({dgst[:19]}) uses input {inp.digest[:19]} before it is defined")
            last = n == len(ops) - 1
            if last and (len(op.inputs) != 1 or op.WhichOneof("op") is not None):
                raise DefinitionError("the last op must be the terminal op: one input and no operation")
            if not last and op.WhichOneof("op") is None:
                raise DefinitionError(f"op {n} ({dgst[:19]}) has no operation")
            seen.add(dgst)

    # -- walking --------------------------------------------------------------------
    @property
    def ops(self) -> list:
        """Internal: the ops as parsed ``pb.Op`` messages, in definition order (see ``vertices()``)."""
        if self._ops is None:
            from envd_jupyter._proto import ops_pb2

            ops = []
            for n, d in enumerate(self.defs):
                op = ops_pb2.Op()
                try:
                    op.ParseFromString(d)
                except Exception as exc:
                    raise DefinitionError(f"op {n} is not a pb.Op: {exc}") from None
                ops.append(op)
            self._ops = ops
        return self._ops

    def op(self, digest: str):
        """Internal: the parsed ``pb.Op`` of ``digest``; outside llb read ``vertices()``."""
        return self.ops[self.digests.index(digest)]

    def inputs(self, digest: str) -> list[tuple[str, int]]:
        return [(i.digest, i.index) for i in self.op(digest).inputs]

    @property
    def head(self) -> tuple[str, int] | None:
        """(digest, output index) of the result, or None for an empty (scratch) definition."""
        if not self.defs:
            return None
        inp = self.ops[-1].inputs[0]
        return inp.digest, inp.index

    def root_input(self, digest: str) -> tuple[str, int] | None:
        """The filesystem step ``digest`` starts from: an exec's ``/`` mount input, else its first input.

        None for a source, or an exec over scratch: nothing was there before the step.
        """
        op = self.op(digest)
        if op.WhichOneof("op") == "exec":
            root = next((m for m in op.exec.mounts if m.dest == "/"), None)
            if root is None or not 0 <= root.input < len(op.inputs):
                return None
            chosen = op.inputs[root.input]
        elif op.inputs:
            chosen = op.inputs[0]
        else:
            return None
        return chosen.digest, chosen.index

    def up_to(self, digest: str, index: int = 0) -> "Definition":
        """The graph ending at output ``index`` of ``digest``: that op and its ancestors, nothing after it.

        Digests of the kept ops are unchanged, so the daemon serves them from the cache it already has.
        """
        keep, pending = set(), [digest]
        while pending:
            current = pending.pop()
            if current not in keep:
                keep.add(current)
                pending.extend(d for d, _ in self.inputs(current))
        order = [d for d in self.digests[:-1] if d in keep]
        terminal = encode_input(digest, index)
        terminal_digest = "sha256:" + hashlib.sha256(terminal).hexdigest()
        metadata = {d: self.metadata[d] for d in order if d in self.metadata}
        if self.digests[-1] in self.metadata:
            metadata[terminal_digest] = self.metadata[self.digests[-1]]
        source = None if self.source is None else SourceData(
            self.source.infos, {d: locs for d, locs in self.source.locations.items() if d in keep})
        return Definition([self.defs[self.digests.index(d)] for d in order] + [terminal], metadata, source,
                          digests=order + [terminal_digest])

    @property
    def required_caps(self) -> frozenset[str]:
        """Every capability named in the ops' metadata: what the daemon must support."""
        caps = set()
        for meta in self.metadata.values():
            caps |= meta.caps
        return frozenset(caps)

    @property
    def minimum_caps(self) -> frozenset[str]:
        """The caps a daemon needs once lowering has done what it can (see llb.caps)."""
        from ._caps import minimum_caps

        return minimum_caps(self)

    def locations(self, digest: str) -> list[SourceLocation]:
        """The user source locations recorded for op ``digest``."""
        if self.source is None:
            return []
        out = []
        for idx, ranges in self.source.locations.get(digest, []):
            filename, data, language, _ = self.source.infos[idx]
            for start, end in ranges:
                start = start or (0, 0)
                end = end or start
                out.append(SourceLocation(filename, start[0], end[0], start[1], end[1], data or None, language))
        return out

    # -- views and rewrites -----------------------------------------------------------
    def vertices(self) -> list[Vertex]:
        """Every op but the terminal one as a plain ``llb.Vertex``, in definition order."""
        return _graph.vertices(self)

    def to_graph(self) -> dict:
        """JSON-serialisable nodes and edges with display names, kinds and locations."""
        return _graph.to_graph(self)

    def to_json(self) -> str:
        """One JSON object per line per op, as ``buildctl debug dump-llb`` prints."""
        from ._dump import to_json

        return to_json(self)

    def to_dot(self) -> str:
        """Graphviz text as ``buildctl debug dump-llb --dot`` prints."""
        from ._dump import to_dot

        return to_dot(self)

    def lower_for(self, caps) -> "Definition":
        """A Definition the daemon with ``caps`` can run (see envd_jupyter.llb._caps)."""
        from ._caps import lower_for

        return lower_for(self, caps)

    def __len__(self) -> int:
        return len(self.defs)

    def __repr__(self) -> str:
        return f"Definition({len(self.defs)} ops, head={self.head})"
