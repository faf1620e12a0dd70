"""Solve a graph one step at a time inside an interactive build, pausing where the caller looks.

Each step solves the graph cut at that vertex (``Definition.up_to``: the same op digests), so the
daemon reuses everything solved before it in the build and runs only the new vertex; the ref of
each pause is that vertex's filesystem, readable (and ``exec``-able) while the build is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from envd_jupyter.buildkit._errors import GatewayError
from envd_jupyter.buildkit._ref import Ref
from envd_jupyter.buildkit._request import lower

if TYPE_CHECKING:
    from envd_jupyter.buildkit._gateway import Build


@dataclass(frozen=True)
class Step:
    """One pause: ``vertex`` (an ``llb.Vertex``) has been solved; ``ref`` is its filesystem."""

    position: int  # 1-based, in dependency order
    total: int
    vertex: Any
    ref: Ref

    def __str__(self) -> str:
        cached = " (cached)" if self.ref.cached else ""
        return f"step {self.position}/{self.total}: {self.vertex.name}{cached}"


class Stepper:
    """``for step in build.stepper(state): …`` solves vertex after vertex in dependency order.

    ``next()`` solves the next vertex; ``resume()`` solves up to the next breakpoint (a vertex marked
    with ``llb.State.breakpoint()``, or named by digest, digest prefix or exact name in ``breakpoints``)
    or the end in one solve, running what lies between. A failing vertex raises SolveError as ``Build.solve`` does.
    """

    def __init__(self, build: "Build", target: Any, breakpoints: Iterable[str] = ()):
        self.build = build
        self.definition = lower(target, build._llb_caps)
        if not hasattr(self.definition, "up_to"):
            raise GatewayError("stepping needs an llb State or Definition (raw bytes cannot be cut into steps)")
        self.vertices = self.definition.vertices()
        self.breakpoints = set(breakpoints)
        self.position = 0  # vertices solved so far
        self.last: Step | None = None

    @property
    def done(self) -> bool:
        return self.position >= len(self.vertices)

    def is_breakpoint(self, vertex: Any) -> bool:
        """Named in ``breakpoints``, or marked in the graph (``llb.State.breakpoint()``)."""
        from envd_jupyter.llb import BREAKPOINT_KEY

        meta = getattr(self.definition, "metadata", {}).get(vertex.digest)
        if meta is not None and (meta.description or {}).get(BREAKPOINT_KEY) == "true":
            return True
        bare = vertex.digest.removeprefix("sha256:")
        return any(mark == vertex.name or (len(mark) >= 6 and bare.startswith(mark.removeprefix("sha256:")))
                   for mark in self.breakpoints)

    def next(self) -> Step:
        if self.done:
            raise StopIteration
        return self._solve_to(self.position)

    def resume(self) -> Step | None:
        """Solve through the next breakpoint after the current position, or to the end; None when done."""
        if self.done:
            return None
        later = range(self.position, len(self.vertices))
        target = next((i for i in later if self.is_breakpoint(self.vertices[i])), len(self.vertices) - 1)
        return self._solve_to(target)

    def _solve_to(self, index: int) -> Step:
        vertex = self.vertices[index]
        ref = self.build.solve(self.definition.up_to(vertex.digest))
        self.position = index + 1
        self.last = Step(index + 1, len(self.vertices), vertex, ref)
        return self.last

    def __iter__(self) -> Iterator[Step]:
        return self

    def __next__(self) -> Step:
        return self.next()
