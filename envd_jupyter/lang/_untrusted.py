"""Build files are untrusted input: the host files they name stay in their context, their YAML is bounded.

A build.envd or cog.yaml written by someone else must not read ``../../.aws/credentials`` into a
Definition sent to a (possibly shared) daemon, nor expand a few hundred bytes of YAML aliases
into a hundred thousand entries. Every host path a build file names resolves (symlinks followed)
inside the build context or the file's own directory, or the call fails at the user's file:line.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Iterable

import yaml

from envd_jupyter.lang._errors import CogConfigError, EnvdError, Location

MAX_YAML_NODES = 10_000  # nodes a YAML document may expand to through its aliases


def allowed_roots(context: Path, at: Location | None) -> list[Path]:
    """The build context, and the directory of the file the call is in (when it is a real file)."""
    roots = [Path(context)]
    if at is not None and at.file and Path(at.file).is_file():
        roots.append(Path(at.file).parent)
    return roots


def resolve_inside(base: Path, name: str, roots: Iterable[Path], what: str, at: Location | None,
                   error: type[EnvdError]) -> Path:
    """``base / name`` resolved, or ``error`` at ``at`` when it lies outside every root."""
    resolved = (Path(base) / name).resolve()
    real_roots = [Path(root).resolve() for root in roots]
    if not any(resolved == root or root in resolved.parents for root in real_roots):
        where = " or ".join(str(root) for root in dict.fromkeys(real_roots))
        raise error(f"{what} {name!r} resolves to {resolved}, outside the build context ({where})", at)
    return resolved


def context_relative(name: str, what: str, at: Location | None, error: type[EnvdError]) -> str:
    """A path inside the context as the daemon sees it: neither absolute nor climbing out with ``..``."""
    cleaned = posixpath.normpath(name)
    if name.startswith("/") or cleaned == ".." or cleaned.startswith("../"):
        raise error(f"{what} {name!r} is outside the build context (use a path relative to it)", at)
    return name


def check_yaml_aliases(node: yaml.Node, path: Path) -> None:
    """CogConfigError when an alias refers to its own node, or aliases expand past MAX_YAML_NODES."""
    expanded: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, children_done = stack.pop()
        key = id(current)
        if children_done:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in _children(current))
            if expanded[key] > MAX_YAML_NODES:
                raise CogConfigError(f"YAML aliases expand to more than {MAX_YAML_NODES} nodes",
                                     Location(str(path), current.start_mark.line + 1))
            continue
        if key in expanded:
            continue
        if key in on_path:
            raise CogConfigError("a YAML alias refers to a node that contains it",
                                 Location(str(path), current.start_mark.line + 1))
        on_path.add(key)
        stack.append((current, True))
        for child in _children(current):
            if id(child) in on_path:
                raise CogConfigError("a YAML alias refers to a node that contains it",
                                     Location(str(path), child.start_mark.line + 1))
            if id(child) not in expanded:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
