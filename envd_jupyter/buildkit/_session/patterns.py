"""Include/exclude patterns with the semantics BuildKit's file sync uses (Docker's patternmatcher).

The daemon sends patterns from the LLB ``local()`` op; a user's ``.dockerignore`` adds more. The
walker must decide exactly as fsutil does, or BuildKit's view of the context (and its cache keys)
would differ from what ``docker buildx`` uploads for the same directory.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

_REGEX_SPECIALS = set(".+()|{}$")
_GLOB_CHARS = set("*[]?^\\")


class PatternError(ValueError):
    """A pattern that Docker's matcher would also reject."""


def clean(path: str) -> str:
    """Go's ``filepath.Clean`` for slash paths (normpath keeps a leading ``//``; Go does not)."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


@dataclass
class Pattern:
    text: str
    exclusion: bool
    _kind: str = field(default="", repr=False)
    _regex: re.Pattern | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._compile()

    def without_trailing_glob(self) -> str:
        text = self.text
        for suffix in ("/**", "/*"):
            if text.endswith(suffix):
                text = text[: -len(suffix)]
        return text

    def match(self, path: str) -> bool:
        if self._kind == "exact":
            return path == self.text
        if self._kind == "prefix":
            return path.startswith(self.text[:-2])
        if self._kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        return bool(self._regex.match(path))

    def _compile(self) -> None:
        out, kind, text, i = "^", "exact", self.text, 0
        while i < len(text):
            ch = text[i]
            if ch == "*":
                if i + 1 < len(text) and text[i + 1] == "*":
                    start = i
                    i += 2
                    if i < len(text) and text[i] == "/":
                        i += 1
                    if i == len(text):
                        kind, out = ("prefix", out) if kind == "exact" else ("regex", out + ".*")
                    else:
                        out += "(.*/)?"
                        kind = "regex"
                    if start == 0:
                        kind = "suffix"
                    continue
                out += "[^/]*"
                kind = "regex"
            elif ch == "?":
                out += "[^/]"
                kind = "regex"
            elif ch in _REGEX_SPECIALS:
                out += "\\" + ch
            elif ch == "\\":
                if i + 1 < len(text):
                    i += 1
                    out += "\\" + text[i]
                    kind = "regex"
                else:
                    out += "\\\\"
            elif ch in "[]":
                out += ch
                kind = "regex"
            else:
                out += ch
            i += 1
        self._kind = kind
        if kind == "regex":
            try:
                self._regex = re.compile(out + "$", re.S)
            except re.error as exc:
                raise PatternError(f"bad pattern {self.text!r}: {exc}") from None


class PatternMatcher:
    """Ordered patterns; a later ``!pattern`` re-includes what earlier ones matched."""

    def __init__(self, patterns: list[str] | tuple[str, ...]):
        self.patterns: list[Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise PatternError('illegal exclusion pattern: "!"')
                text = text[1:]
            _check_brackets(text)
            self.patterns.append(Pattern(text, exclusion))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches_or_parent_matches(self, path: str) -> bool:
        matched, _ = self.matches_with_parent(path, None)
        return matched

    def matches_with_parent(self, path: str, parent: list[bool] | None) -> tuple[bool, list[bool]]:
        """Match ``path``; ``parent`` is what its directory returned (None: check every ancestor)."""
        matched = False
        info = [False] * len(self.patterns)
        for i, pattern in enumerate(self.patterns):
            hit = parent[i] if parent else False
            if not hit:
                if pattern.exclusion != matched:
                    continue
                hit = pattern.match(path)
                if not hit and not parent:
                    hit = any(pattern.match(ancestor) for ancestor in _ancestors(path))
            info[i] = hit
            if hit:
                matched = not pattern.exclusion
        return matched, info

    def only_literal_prefixes(self, exclusions: bool) -> bool:
        """True when every (non-)exclusion pattern is a plain path, so whole dirs can be pruned."""
        return not any(
            p.exclusion == exclusions and _GLOB_CHARS & set(p.without_trailing_glob()) for p in self.patterns
        )

    def may_match_inside(self, directory: str, exclusions: bool) -> bool:
        prefix = directory + "/"
        return any(
            p.exclusion == exclusions and (p.without_trailing_glob() + "/").startswith(prefix) for p in self.patterns
        )


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _check_brackets(text: str) -> None:
    depth = 0
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
    if depth:
        raise PatternError(f"syntax error in pattern {text!r}")


def parse_dockerignore(text: str) -> list[str]:
    """Patterns of a ``.dockerignore`` file: comments dropped, paths cleaned, leading ``/`` removed."""
    patterns = []
    for number, line in enumerate(text.splitlines()):
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


def read_dockerignore(directory: str | Path) -> list[str]:
    path = Path(directory) / ".dockerignore"
    return parse_dockerignore(path.read_text(encoding="utf-8")) if path.is_file() else []
