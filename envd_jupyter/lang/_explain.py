"""Why did this rebuild? Compare two Definitions op by op and name the first changes.

An op re-runs when its digest is new. Among the new ops, the *first* changes are those whose
inputs all existed before: everything downstream of them changed only because an input did.
Each first change is matched to its previous version (same source line and name, else same
name, else same line, else the same kind on the same inputs) and the differing fields are named:
argv, env, workdir, user, network, mount, input, file content, file action, source, platform.
Given a solve's progress model, the report also says which steps ran and which were cached.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from envd_jupyter.lang._errors import Location
from envd_jupyter.lang._opview import OpView, op_views


@dataclass(frozen=True)
class Change:
    """One first-changed op: what it is, where the user wrote it, and what differs."""

    digest: str
    name: str
    location: Location | None
    fields: tuple[str, ...]
    details: tuple[str, ...] = ()
    previous: str | None = None  # digest of the matched previous op, None for a new step

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        what = ", ".join(self.fields) if self.previous else "new step"
        extra = f" ({'; '.join(self.details)})" if self.details else ""
        return f"{where}{self.name or self.digest[:19]}: {what} changed{extra}" if self.previous \
            else f"{where}{self.name or self.digest[:19]}: {what}{extra}"


@dataclass(frozen=True)
class StepRun:
    digest: str
    name: str
    location: Location | None
    cached: bool


@dataclass
class RebuildReport:
    changes: list[Change] = field(default_factory=list)
    downstream: list[str] = field(default_factory=list)  # digests changed only because an input did
    also_changed: list[Change] = field(default_factory=list)  # downstream ops whose own fields differ too
    ran: list[StepRun] = field(default_factory=list)
    cached: list[StepRun] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        return not self.changes

    def __str__(self) -> str:
        if not self.changes:
            lines = ["nothing changed: every op digest is the same as before"]
        else:
            lines = [f"{len(self.changes)} first change(s), {len(self.downstream)} op(s) downstream:"]
            lines += [f"  {c}" for c in self.changes]
            if self.also_changed:
                lines.append("also changed further down:")
                lines += [f"  {c}" for c in self.also_changed]
        if self.ran or self.cached:
            lines.append(f"ran {len(self.ran)} step(s), {len(self.cached)} from cache:")
            lines += [f"  ran    {_step(s)}" for s in self.ran] + [f"  cached {_step(s)}" for s in self.cached]
        return "\n".join(lines)


def _step(s: StepRun) -> str:
    return f"{s.location}: {s.name}" if s.location else s.name


def explain_rebuild(previous, current, progress=None) -> RebuildReport:
    """Compare Definitions (or their bytes); ``progress`` is a BuildModel of the solve of ``current``."""
    before, after = op_views(previous), op_views(current)
    new = {d for d in after if d not in before}
    report = RebuildReport()
    for digest, view in after.items():
        if digest not in new:
            continue
        if any(i in new for i in view.inputs):
            report.downstream.append(digest)
            old = _counterpart(view, before, after)
            own = _describe(view, old, before) if old is not None else None
            if own is not None and set(own.fields) - {"input", "metadata"}:
                report.also_changed.append(own)
            continue
        report.changes.append(_describe(view, _counterpart(view, before, after), before))
    if progress is not None:
        for vertex in progress.vertices.values():
            view = after.get(vertex.digest)
            run = StepRun(vertex.digest, view.name if view and view.name else vertex.name,
                          view.location if view else None, bool(vertex.cached))
            (report.cached if vertex.cached else report.ran).append(run)
    return report


def _counterpart(view: OpView, before: dict[str, OpView], after: dict[str, OpView]) -> OpView | None:
    candidates = [v for d, v in before.items() if v.kind == view.kind and d not in after]
    tests = (
        lambda v: v.location == view.location and v.name == view.name and view.location is not None,
        lambda v: v.name == view.name and bool(view.name),
        lambda v: v.location == view.location and view.location is not None,
        lambda v: v.inputs == view.inputs,
    )
    for test in tests:
        matches = [v for v in candidates if test(v)]
        if matches:
            return matches[0]
    return None


def _describe(view: OpView, old: OpView | None, before: dict[str, OpView]) -> Change:
    if old is None:
        return Change(view.digest, view.name, view.location, ("new step",))
    fields: dict[str, list[str]] = {}
    for path, a, b in _diff(old.body, view.body, ()):
        name = _field_of(path)
        fields.setdefault(name, []).append(_detail(name, a, b))
    if old.inputs != view.inputs:
        names = [before[d].name if d in before else d[:19] for d in view.inputs if d not in old.inputs]
        fields.setdefault("input", []).append(f"now from {', '.join(names)}" if names else "inputs reordered")
    details = tuple(d for name in fields for d in fields[name] if d)
    return Change(view.digest, view.name, view.location, tuple(fields) or ("metadata",), details, old.digest)


def _diff(a: Any, b: Any, path: tuple) -> list[tuple[tuple, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(key), b.get(key), path + (key,))
        return out
    if isinstance(a, list) and isinstance(b, list) and path[-1:] not in (("args",), ("env",)):
        if len(a) == len(b):
            return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, path + (i,))]
    return [] if a == b else [(path, a, b)]


_FIELDS = {
    ("exec", "meta", "args"): "argv", ("exec", "meta", "env"): "env", ("exec", "meta", "cwd"): "workdir",
    ("exec", "meta", "user"): "user", ("exec", "network"): "network", ("exec", "mounts"): "mount",
    ("exec", "secretenv"): "env", ("source",): "source", ("platform",): "platform",
}


def _field_of(path: tuple) -> str:
    keys = tuple(p for p in path if not isinstance(p, int))
    if keys[:1] == ("file",):
        return "file content" if keys[-1:] == ("data",) else "file action"
    if keys[:2] == ("exec", "mounts") and keys[-1:] in (("input",),):
        return "input"
    for length in (3, 2, 1):
        if keys[:length] in _FIELDS:
            return _FIELDS[keys[:length]]
    return ".".join(map(str, keys)) or "op"


def _detail(name: str, a: Any, b: Any) -> str:
    if name in ("argv", "env") and isinstance(a, list) and isinstance(b, list):
        words = (lambda xs: " ".join(map(str, xs)).split()) if name == "argv" else list
        removed, added = _list_delta(words(a), words(b))
        return f"{name}: -{removed} +{added}"
    if name == "file content":
        return f"file content: {_size(a)} -> {_size(b)} bytes"
    if name in ("input", "mount"):
        return ""
    return f"{name}: {_short(a)} -> {_short(b)}"


def _list_delta(a: list, b: list) -> tuple[list, list]:
    removed, added = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += [_short(x) for x in a[i1:i2]]
            added += [_short(x) for x in b[j1:j2]]
    return removed, added


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (bytes, str)) else 0


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
