"""What a request may say, checked before anything is looked up: one BadRequest line per mistake.

Builder names and build ids are matched against fixed patterns and only ever used as keys (of the
fleet, the archive, a daemon's history); nothing a request says becomes a path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Mapping

from envd_jupyter.server._errors import BadRequest

BUILDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # BuildKit's refs: 25 lowercase letters and digits
STATUSES = ("running", "ok", "failed", "cancelled")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_NAME_FILTER = 200
MAX_BODY = 1024
OFFSET_RANGE = (0, 10**9, 0)  # low, high, default
LIMIT_RANGE = (1, MAX_LIMIT, DEFAULT_LIMIT)
_HISTORY_PARAMETERS = ("builder", "status", "name", "offset", "limit")
_AUTH_PARAMETERS = ("token",)  # Jupyter accepts the token as a query parameter too


@dataclass(frozen=True)
class HistoryQuery:
    """``GET /envd/api/history``'s filters and page."""

    builder: str | None = None
    status: str | None = None
    name: str | None = None
    offset: int = 0
    limit: int = DEFAULT_LIMIT


def builder_name(text: str) -> str:
    if not BUILDER_NAME.fullmatch(text):
        raise BadRequest(f"builder: {_shown(text)} is not a builder name (letters, digits, '.', '_', '-')")
    return text


def build_id(text: str) -> str:
    if not BUILD_ID.fullmatch(text):
        raise BadRequest(f"id: {_shown(text)} is not a build id (letters, digits, '.', '_', '-')")
    return text


def _cache_buster(key: str, values: list[bytes]) -> bool:
    """JupyterLab's ``ServerConnection`` (``cache: 'no-store'``, its default) appends a bare timestamp."""
    return key.isdigit() and all(not value for value in values)


def history_query(arguments: Mapping[str, list[bytes]]) -> HistoryQuery:
    """The query from tornado's ``request.query_arguments``; an empty value means "not filtered"."""
    unknown = sorted(key for key in set(arguments) - set(_HISTORY_PARAMETERS) - set(_AUTH_PARAMETERS)
                     if not _cache_buster(key, arguments[key]))
    if unknown:
        raise BadRequest(f"unknown parameter {_shown(unknown[0])} (expected {', '.join(_HISTORY_PARAMETERS)})")
    values: dict[str, str] = {}
    for key in _HISTORY_PARAMETERS:
        given = arguments.get(key, [])
        if len(given) > 1:
            raise BadRequest(f"{key}: given {len(given)} times, at most once")
        try:
            text = given[0].decode("utf-8") if given else ""
        except UnicodeDecodeError:
            raise BadRequest(f"{key}: not UTF-8") from None
        if text:
            values[key] = text
    status = values.get("status")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status: {_shown(status)} is not one of {', '.join(STATUSES)}")
    name = values.get("name")
    if name is not None and len(name) > MAX_NAME_FILTER:
        raise BadRequest(f"name: longer than {MAX_NAME_FILTER} characters")
    return HistoryQuery(
        builder=builder_name(values["builder"]) if "builder" in values else None, status=status, name=name,
        offset=_integer(values, "offset", OFFSET_RANGE), limit=_integer(values, "limit", LIMIT_RANGE))


def _integer(values: Mapping[str, str], key: str, bounds: tuple[int, int, int]) -> int:
    low, high, default = bounds
    text = values.get(key)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise BadRequest(f"{key}: {_shown(text)} is not an integer from {low} to {high}")
    return int(text)


def pin_body(body: bytes) -> bool:
    """``{"pinned": true|false}`` and nothing else."""
    if len(body) > MAX_BODY:
        raise BadRequest(f"body: longer than {MAX_BODY} bytes")
    try:
        data = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest('body: not JSON (expected {"pinned": true} or {"pinned": false})') from None
    if not isinstance(data, dict) or set(data) != {"pinned"} or not isinstance(data["pinned"], bool):
        raise BadRequest('body: expected {"pinned": true} or {"pinned": false}')
    return data["pinned"]


def _shown(text: str) -> str:
    """A request's text quoted on one short line (it may hold anything)."""
    return repr(text if len(text) <= 40 else text[:40] + "…")
