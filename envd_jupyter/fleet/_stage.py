"""``Stage``: a solved state whose interactive build stays open, so its files can be read later.

The daemon keeps a gateway ref only while its build is open; a stage is that build plus the ref,
the scheduling decision that placed it and the progress model of the solve.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

from envd_jupyter.fleet._errors import FleetError


class Stage:
    """One solved state on one builder. ``close()`` ends its build (nothing is exported)."""

    def __init__(self, builder: str, scheduling: Any, definition: Any, build: Any, ref: Any, *, note: str = "",
                 process: Mapping[str, str] | None = None, failure: Any = None, owns_build: bool = True,
                 failovers: tuple[str, ...] = ()):
        self.builder = builder
        self.scheduling = scheduling
        self.definition = definition
        self.build = build
        self.ref = ref
        self.note = note  # what this stage shows when it is not simply the solved state (after a failure)
        self._process = process  # env/cwd/user commands default to; None: the step that made the stage
        self.failure = failure  # the SolveError this stage was kept open after, if any
        self.failovers = failovers  # one line per builder that failed before this one solved it
        self._owns_build = owns_build  # False: a stepper's pause; the stepper ends the build
        self.shared = None  # Future of the background export to the fleet's shared cache (its ref), if one runs
        self.solved_at = time.time()
        self.closed = False

    @property
    def model(self):
        """The solve's ``buildkit.BuildModel``: every vertex, cached or ran, with its logs."""
        return self.build.model

    @property
    def elapsed(self) -> float:
        return self.ref.elapsed

    def _open(self):
        if self.closed:
            raise FleetError("this stage's build has ended; solve the state again to read its files")
        return self.ref

    def read_file(self, path: str, *, limit: int | None = None) -> bytes:
        """A file's bytes (the first ``limit`` bytes when given)."""
        return self._open().read_file(path, offset=0 if limit is not None else None, length=limit)

    def exec(self, argv: Sequence[str], *, user: str | None = None, cwd: str | None = None,
             env: Mapping[str, str] | None = None, **options: Any):
        """Run ``argv`` in a container over this stage's root filesystem (``buildkit.Build.exec``).

        ``user``, ``cwd`` and the environment default to those of the step that made the stage (its
        nearest run step; after a failure, the failed step), so a command sees what that step saw;
        ``env`` adds to or overrides them. After a failure the command runs over the failed step's own
        filesystems where the daemon reported them (``exec_note`` says which one it is).
        The stage is unchanged afterwards: what the command writes is dropped with its container.
        """
        made_by = process_of(self.definition) if self._process is None else self._process
        variables = dict(pair.partition("=")[::2] for pair in made_by.get("env", "").splitlines() if pair)
        variables.update(env or {})
        ref = self._open()
        where = self.failure if self.failure is not None and self.failure.mounts else ref
        return self.build.exec(where, list(argv), user=made_by.get("user", "") if user is None else user,
                               cwd=made_by.get("cwd", "/") if cwd is None else cwd, env=variables, **options)

    @property
    def exec_note(self) -> str:
        """Which filesystem ``exec`` runs in, when it is not simply the solved state's."""
        if self.failure is not None and self.failure.mounts:
            return f"running in the failed step {self.failure.step!r}'s own filesystem, as it was when it failed"
        return self.note

    def list_dir(self, path: str = "/") -> list:
        """``buildkit.FileStat`` entries of a directory, sorted by name."""
        return sorted(self._open().read_dir(path), key=lambda entry: entry.path)

    def stat(self, path: str):
        return self._open().stat(path)

    def step(self, step: str):
        """The vertex of this solve named by ``step``: a digest, a digest prefix or part of its name."""
        vertices = list(self.model.vertices.values())
        for match in (lambda v: v.digest == step or v.digest.removeprefix("sha256:").startswith(step.removeprefix("sha256:")),
                      lambda v: v.name == step, lambda v: step in v.name):
            found = [v for v in vertices if match(v)]
            # merge and diff vertices are named after their inputs: the innermost match is the step meant
            found = [v for v in found if not any(o is not v and o.name and o.name in v.name for o in found)] or found
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                names = ", ".join(repr(v.name) for v in found[:5])
                raise FleetError(f"step {step!r} matches {len(found)} steps ({names}); be more precise")
        raise FleetError(f"no step {step!r} in this build (steps: "
                         f"{', '.join(repr(v.name) for v in vertices[:8])}{', …' if len(vertices) > 8 else ''})")

    def logs(self, step: str | None = None) -> str:
        """One step's log text, or every step's logs under ``#N name`` headers."""
        if step is not None:
            return self.step(step).log_text()
        parts = []
        for vertex in self.model.vertices.values():
            text = vertex.log_text()
            if text:
                parts.append(f"#{vertex.index} {vertex.name}\n{text.rstrip()}")
        return "\n".join(parts)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._owns_build:
                self.build.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<fleet.Stage on {self.builder}, {len(self.model.vertices)} vertices, {state}>"


def process_of(definition: Any) -> dict[str, str]:
    """The env/cwd/user attrs of the run step nearest the head along first inputs ({} when none ran)."""
    vertices = {vertex.digest: vertex for vertex in definition.vertices()}
    digest = definition.head[0] if definition.head else None
    while digest in vertices:
        vertex = vertices[digest]
        if vertex.kind == "exec":
            return dict(vertex.attrs)
        digest = vertex.inputs[0] if vertex.inputs else None
    return {}
