"""envd's ``include``: ``lib = include(git="https://github.com/org/envdlib")`` then ``lib.func()``.

envd clones the repository, runs every ``*.envd`` file in it and gives their public top-level names
as the members of a module value. starlark-go has no module values (see ``_starlark_chain``), so
the loader does it at the token level, like ``load``: a top-level ``name = include(...)`` is lifted
out, its files run first in the same interpreter, and ``name.member`` becomes ``member``. Besides a
git URL, ``git=`` may name a local directory or file (relative to the including file), which is
how a notebook or a test includes a library without a network.
"""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import tokenize
from dataclasses import dataclass
from pathlib import Path

from envd_jupyter.lang._errors import EnvdLoadError, Location

CLONE_TIMEOUT = 120.0
_REMOTE = ("http://", "https://", "ssh://", "git://", "file://", "git@")


@dataclass
class Include:
    alias: str
    source: str
    line: int


def parse_include(alias: str, arg_tokens, filename: str, line: int) -> Include:
    """``include(git="...")`` or ``include("...")``: one string literal."""
    at = Location(filename, line)
    args = [t for t in arg_tokens if t.string != ","]
    if len(args) == 3 and args[0].string == "git" and args[1].string == "=":
        args = args[2:]
    if len(args) != 1 or args[0].type != tokenize.STRING:
        raise EnvdLoadError('include: write it as name = include(git="<git URL or local path>")', at)
    return Include(alias, ast.literal_eval(args[0].string), line)


def is_include(tokens, i: int) -> bool:
    """``tokens[i:]`` starts a top-level ``name = include(``."""
    return tokens[i].type == tokenize.NAME and tokens[i].start[1] == 0 and i + 3 < len(tokens) \
        and tokens[i + 1].string == "=" and tokens[i + 2].string == "include" and tokens[i + 3].string == "("


def include_files(include: Include, base_dir: Path, at: Location) -> list[Path]:
    """The ``*.envd`` files an include runs, in a stable order (a git repository is cloned first)."""
    if include.source.startswith(_REMOTE):
        root = _clone(include.source, at)
    else:
        root = (base_dir / include.source).resolve()
        if not root.exists():
            raise EnvdLoadError(f"include: no such directory or file {root}", at)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.envd") if ".git" not in p.parts)
    if not files:
        raise EnvdLoadError(f"include: {include.source} has no .envd files", at)
    return files


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "envd-jupyter" / "include"


def _clone(url: str, at: Location) -> Path:
    """A shallow clone of ``url``, kept in the user cache and refreshed when reachable (envd does the same)."""
    target = _cache_dir() / hashlib.sha256(url.encode()).hexdigest()[:24]
    if (target / ".git").is_dir():
        command = ["git", "-C", str(target), "pull", "--ff-only", "--depth", "1"]
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        command = ["git", "clone", "--depth", "1", "--quiet", url, str(target)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=CLONE_TIMEOUT,
                                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise EnvdLoadError(f"include: cannot fetch {url}: git is not installed", at) from None
    except subprocess.TimeoutExpired:
        raise EnvdLoadError(f"include: cannot fetch {url}: no answer in {CLONE_TIMEOUT:g} s", at) from None
    if result.returncode != 0 and not (target / ".git").is_dir():
        reason = next((line for line in reversed(result.stderr.splitlines()) if line.strip()), "git failed")
        raise EnvdLoadError(f"include: cannot fetch {url}: {reason.removeprefix('fatal: ')}", at)
    return target  # a failed refresh keeps the clone already here, as envd keeps its copy
