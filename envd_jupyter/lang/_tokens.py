"""Bracket matching over ``tokenize`` tokens, for the loader's source rewrites (forward and back)."""

from __future__ import annotations

import tokenize

from envd_jupyter.lang._errors import EnvdSyntaxError, Location

_OPENERS, _CLOSERS = "([{", ")]}"
# CPython's own parser stops at 200 nested brackets; go.starlark.net's recursive parser has no limit
# and ends its process with a Go stack overflow (after growing a 1 GB stack) somewhere past 100,000.
MAX_NESTING = 200


def check_nesting(tokens, filename: str) -> None:
    """Refuse brackets nested deeper than ``MAX_NESTING``; it also keeps bracket matching linear."""
    depth = 0
    for token in tokens:
        if token.type == tokenize.OP and token.string in _OPENERS:
            depth += 1
            if depth > MAX_NESTING:
                raise EnvdSyntaxError(f"brackets nested more than {MAX_NESTING} deep", Location(filename, token.start[0]))
        elif token.type == tokenize.OP and token.string in _CLOSERS:
            depth -= 1


def is_open(tokens, j: int) -> bool:
    return j < len(tokens) and tokens[j].string == "("


def matching_close(tokens, open_index: int, filename: str) -> int:
    """Index of the bracket closing ``tokens[open_index]``; an unclosed one is the user's syntax error."""
    depth = 0
    for j in range(open_index, len(tokens)):
        if tokens[j].type == tokenize.OP and tokens[j].string in _OPENERS:
            depth += 1
        elif tokens[j].type == tokenize.OP and tokens[j].string in _CLOSERS:
            depth -= 1
            if depth == 0:
                return j
    raise EnvdSyntaxError("unclosed '('", Location(filename, tokens[open_index].start[0]))


def matching_open(tokens, close: int) -> int | None:
    """Index of the bracket opening ``tokens[close]``, or None when there is none."""
    depth = 0
    for j in range(close, -1, -1):
        if tokens[j].type == tokenize.OP and tokens[j].string in _CLOSERS:
            depth += 1
        elif tokens[j].type == tokenize.OP and tokens[j].string in _OPENERS:
            depth -= 1
            if depth == 0:
                return j
    return None
