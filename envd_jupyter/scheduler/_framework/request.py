"""What a build asks of the scheduler: plain vertex digests, kinds and durations, no LLB types.

``BuildRequest.from_definition`` reads an LLB Definition through its plain views
(``vertices()``, ``minimum_caps``) without importing llb; keeping the request plain lets the
scheduler stay independent of the IR and lets simulators and tests build requests by hand.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

#: Relative cost of a vertex by op kind when no recorded duration is known (seconds-ish scale).
DEFAULT_KIND_WEIGHTS: Mapping[str, float] = {
    "exec": 10.0,
    "image": 5.0,
    "git": 3.0,
    "http": 2.0,
    "local": 0.5,
    "file": 1.0,
    "merge": 0.5,
    "diff": 1.0,
    "build": 1.0,
}


@dataclass(frozen=True, slots=True)
class Vertex:
    """One LLB vertex: its digest, op kind, recorded duration (s) if known, and input positions.

    ``inputs`` are the positions of earlier vertices in the request, in the op's input order;
    ``()`` marks a root. Nothing is implied: a chain names each previous vertex.
    """

    digest: str
    kind: str = "exec"
    duration: float | None = None
    inputs: tuple[int, ...] = ()

    def __post_init__(self):
        if self.inputs is None:
            raise TypeError(f"Vertex {self.digest}: inputs=None no longer means the previous vertex; "
                            "pass inputs=(position,) for a chain or () for a root")
        if not isinstance(self.inputs, tuple):
            object.__setattr__(self, "inputs", tuple(self.inputs))


def _chain_keys(vertices: Sequence[Vertex]) -> tuple[int, ...]:
    """Hash every vertex together with the chain keys of its inputs, from the roots down.

    Two requests share a key only if the vertex and its whole history are equal, which is
    when a daemon can reuse the result.
    """
    keys: list[int] = []
    for position, vertex in enumerate(vertices):
        h = hashlib.blake2b(vertex.digest.encode(), digest_size=8)
        for parent in vertex.inputs:
            if not 0 <= parent < position:
                raise ValueError(f"vertex {position} ({vertex.digest}) has input {parent}, which is not an earlier vertex")
            h.update(keys[parent].to_bytes(8, "little"))
        keys.append(int.from_bytes(h.digest(), "little"))
    return tuple(keys)


class BuildRequest:
    """A solve to place: vertices in topological order plus platform, labels and free attributes.

    ``required_caps`` are the LLB capabilities a daemon must advertise to run the build (for an
    LLB Definition: ``definition.minimum_caps``, which leaves out what lowering can replace).
    """

    __slots__ = (
        "id", "vertices", "platform", "labels", "attributes", "required_caps", "chain_keys", "_kinds", "_durations", "_timed", "_work_cache",
    )

    def __init__(
        self,
        vertices: Sequence[Vertex] = (),
        *,
        id: str = "",
        platform: str | None = None,
        labels: Mapping[str, str] | None = None,
        attributes: Mapping[str, str] | None = None,
        required_caps: Iterable[str] = (),
    ) -> None:
        self.id = id
        self.vertices = tuple(vertices)
        self.platform = platform
        self.labels = dict(labels or {})
        self.attributes = dict(attributes or {})
        self.required_caps = frozenset(required_caps)
        self.chain_keys = _chain_keys(self.vertices)
        self._kinds = [v.kind for v in self.vertices]
        self._durations = [v.duration if v.duration is not None and 0 < v.duration < math.inf else 0.0 for v in self.vertices]
        self._timed = any(self._durations)  # without recorded durations every vertex weighs its kind
        self._work_cache: dict[tuple, tuple[tuple[float, ...], float]] = {}

    @classmethod
    def from_definition(
        cls,
        definition,
        *,
        durations: Mapping[str, float] | None = None,
        platform: str | None = None,
        labels: Mapping[str, str] | None = None,
        id: str = "",
    ) -> "BuildRequest":
        """The request for an LLB Definition, read through its ``vertices()`` and ``minimum_caps``.

        Kinds and input positions follow the graph (merges and diffs keep every input, in order);
        ``durations`` maps digests to recorded seconds.
        """
        durations = durations or {}
        position: dict[str, int] = {}
        vertices = []
        for vertex in definition.vertices():
            try:
                inputs = tuple(position[digest] for digest in vertex.inputs)
            except KeyError as missing:
                raise ValueError(f"vertex {vertex.digest} has input {missing.args[0]}, "
                                 "which is not an earlier vertex") from None
            position[vertex.digest] = len(vertices)
            vertices.append(Vertex(vertex.digest, vertex.kind, durations.get(vertex.digest), inputs))
        return cls(vertices, id=id, platform=platform, labels=labels, required_caps=definition.minimum_caps)

    def work(self, kind_weights: Mapping[str, float], use_durations: bool = True) -> tuple[tuple[float, ...], float]:
        """Per-vertex work and its total: recorded duration if known, else the kind's weight.

        When some vertices are timed, kind weights are put on their scale (seconds per weight unit:
        the timed vertices' seconds over their kind weights), so a new step next to a timed chain
        weighs what its kind usually costs in that chain, not a bare weight in other units.
        """
        cache_key = (id(kind_weights), use_durations)
        hit = self._work_cache.get(cache_key)
        if hit is not None:
            return hit
        default = kind_weights.get("*", 1.0)
        weight_of = kind_weights.get
        if use_durations and self._timed:
            timed_units = sum(weight_of(k, default) for d, k in zip(self._durations, self._kinds) if d)
            scale = sum(self._durations) / timed_units if timed_units > 0 else 1.0
            weights = [d or weight_of(k, default) * scale for d, k in zip(self._durations, self._kinds)]
        else:
            weights = [weight_of(k, default) for k in self._kinds]
        result = (tuple(weights), sum(weights))
        self._work_cache[cache_key] = result
        return result

    def __repr__(self) -> str:
        return f"BuildRequest(id={self.id!r}, vertices={len(self.vertices)}, platform={self.platform!r})"
