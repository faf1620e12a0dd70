"""Bracket matching over ``tokenize`` tokens, for the loader's source rewrites (forward and back)."""

from __future__ import annotations

import tokenize

from envd_jupyter.lang._errors import EnvdSyntaxError, Location

_OPENERS, _CLOSERS = "([{", ")]}"


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
