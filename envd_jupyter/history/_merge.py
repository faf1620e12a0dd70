"""``merged_history``: the daemons' own build records joined with the archive's entries by ref.

A daemon knows every build made on it (buildx, ``docker build``, ours) for its retention; the
archive knows our builds' notebook, cell and state, and keeps them past that retention. Each item
says where it came from: "daemon", "archive" or "both". Daemons are asked in parallel, each call
bounded by its client's timeout; one that fails is named in ``errors``, never raised.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping

from envd_jupyter import buildkit
from envd_jupyter.history._archive import Archive

MAX_PARALLEL_DAEMONS = 8
ITEM_KEYS = ("id", "builder", "address", "name", "status", "created", "completed", "total", "cached", "ran",
             "error", "pinned", "source", "notebook", "state", "cell_id")


def _daemon_item(builder: str, address: str, record: buildkit.HistoryRecord) -> dict:
    return {"id": record.ref, "builder": builder, "address": address, "name": record.name,
            "status": record.status, "created": record.created, "completed": record.completed,
            "total": record.steps_total, "cached": record.steps_cached,
            "ran": max(0, record.steps_completed - record.steps_cached), "error": record.error,
            "pinned": record.pinned, "source": "daemon", "notebook": "", "state": "", "cell_id": ""}


def _archive_item(entry: dict) -> dict:
    item = {key: entry.get(key) for key in ITEM_KEYS}
    item["source"] = "archive"
    return item


def _joined(daemon: dict, entry: dict) -> dict:
    """A build both know. An entry a kernel wrote says what the cell saw: the magics keep a solved
    stage's build open for browsing, so the daemon says "running" (no counts) until the stage closes,
    then how the build ended, not how the cell's solve went. The daemon's pin is the live one, and so is
    its builder name: a kernel names the daemon after its own fleet ("default" for ``Envd.builder``)."""
    if entry.get("origin") != "kernel":
        return dict(daemon, source="both")
    item = _archive_item(entry)
    item.update(source="both", pinned=daemon["pinned"], builder=daemon["builder"],
                address=entry["address"] or daemon["address"])
    return item


def _daemon_records(builder: str, client: Any) -> tuple[str, list | None, str]:
    try:
        return builder, client.history(), ""
    except Exception as exc:  # noqa: BLE001 - a daemon's failure is reported per builder, never raised
        text = (str(exc).splitlines() or [""])[0]
        if not isinstance(exc, buildkit.BuildKitError):
            text = f"{type(exc).__name__}: {text}"
        return builder, None, text or type(exc).__name__


def merged_history(archive: Archive | None, clients: Mapping[str, Any], *, builder: str | None = None,
                   status: str | None = None, name: str | None = None, offset: int = 0, limit: int | None = 50,
                   errors: dict[str, str] | None = None, remember: bool = False) -> tuple[list[dict], int]:
    """One page of daemon records and archive entries, newest first, and the number of matches.

    ``errors`` (when given) receives ``{builder: "one line"}`` for every daemon that failed; its
    archive entries still show (source "archive"). With ``remember`` the daemon summaries are copied
    into the archive, so they outlive the daemon's retention.
    """
    wanted = {b: c for b, c in clients.items() if builder is None or b == builder}
    items: dict[str, dict] = {}  # by ref: BuildKit's refs are random ids, whatever each side calls the builder
    if wanted:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_DAEMONS, len(wanted)),
                                thread_name_prefix="envd-history-merge") as pool:
            answers = list(pool.map(lambda pair: _daemon_records(*pair), wanted.items()))
        for name_of_builder, records, error in answers:
            if records is None:
                if errors is not None:
                    errors[name_of_builder] = error
                continue
            address = str(getattr(wanted[name_of_builder], "address", ""))
            for record in records:
                items[record.ref] = _daemon_item(name_of_builder, address, record)
            if remember and archive is not None:
                archive.remember(name_of_builder, address, records)
    if archive is not None:
        entries, _ = archive.list(limit=None)
        for entry in entries:
            ref = entry["id"]
            if ref in items:
                items[ref] = _joined(items[ref], entry)
            elif builder is None or entry["builder"] == builder:
                items[ref] = _archive_item(entry)
    matched = [item for item in items.values() if _matches(item, status, name)]
    matched.sort(key=lambda item: (item["created"] or 0.0, item["id"]), reverse=True)
    start = max(0, offset)
    return matched[start:] if limit is None else matched[start:start + max(0, limit)], len(matched)


def _matches(item: dict, status: str | None, name: str | None) -> bool:
    if status and item["status"] != status:
        return False
    if name:
        needle = name.lower()
        return needle in (item["name"] or "").lower() or needle in (item["state"] or "").lower()
    return True
