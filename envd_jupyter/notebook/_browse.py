"""Directory listings and file views for the result browser, and their static HTML/text.

Entries come from the caller's ``list_dir``: the library's ``FileStat`` (``is_dir``/``is_symlink``
properties), a raw fsutil ``Stat`` (Go ``os.FileMode`` bits in ``mode``) or a dict. A file is
shown up to FILE_CAP bytes; bytes that are not UTF-8 text are shown as "binary, N bytes".
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from html import escape
from typing import Any

from ._tables import BOX, CELL, LOG, TABLE

FILE_CAP = 256 * 1024
STATIC_TEXT_CAP = 16 * 1024  # what a saved notebook keeps of an open file
MAX_ENTRIES = 2000
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def human_size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def entry(value: Any, directory: str) -> dict[str, Any]:
    """One listing row: name, full path, is_dir, is_symlink, linkname, size."""
    def get(key: str) -> Any:
        return value.get(key) if isinstance(value, Mapping) else getattr(value, key, None)

    raw = str(get("name") or get("path") or "")
    name = posixpath.basename(raw.rstrip("/")) or raw
    mode = int(get("mode") or 0)
    is_dir, is_symlink = get("is_dir"), get("is_symlink")
    return {"name": name, "path": posixpath.join(directory, name),
            "is_dir": bool(mode & GO_MODE_DIR) if is_dir is None else bool(is_dir),
            "is_symlink": bool(mode & GO_MODE_SYMLINK) if is_symlink is None else bool(is_symlink),
            "linkname": str(get("linkname") or ""), "size": int(get("size") or 0)}


def directory_listing(list_dir: Callable[[str], Iterable[Any]], path: str) -> dict[str, Any]:
    """``{"entries": [...], "more": int, "error": str}``: directories first, then by name."""
    try:
        entries = [entry(value, path) for value in list_dir(path)]
    except Exception as error:  # the caller's callback: shown in the tree, never raised into the kernel
        return {"entries": [], "more": 0, "error": one_line(error)}
    entries.sort(key=lambda e: (not e["is_dir"], e["name"]))
    return {"entries": entries[:MAX_ENTRIES], "more": max(0, len(entries) - MAX_ENTRIES), "error": ""}


def _is_text(sample: bytes) -> bool:
    if b"\0" in sample[:8192]:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:  # a character cut by the cap is still text
        return error.reason == "unexpected end of data" and error.start >= len(sample) - 3
    return True


def file_view(read_file: Callable[[str], bytes], path: str, size: int | None) -> dict[str, Any]:
    """``{"path", "size", "binary", "truncated", "text", "error", "about"}`` for the viewer."""
    try:
        data = bytes(read_file(path))
    except Exception as error:  # the caller's callback: shown in the viewer
        return {"path": path, "size": size or 0, "binary": False, "truncated": False, "text": "",
                "error": one_line(error), "about": one_line(error)}
    size = len(data) if size is None else max(size, len(data))  # a listing may under-report
    sample = data[:FILE_CAP]
    binary = not _is_text(sample)
    view = {"path": path, "size": size, "binary": binary, "truncated": max(size, len(data)) > FILE_CAP,
            "text": "" if binary else sample.decode("utf-8", "replace"), "error": ""}
    return view | {"about": describe(view)}


def describe(view: Mapping[str, Any]) -> str:
    """"binary, N bytes" / "N bytes (first 256 KiB shown)" / the error."""
    if view.get("error"):
        return view["error"]
    if view.get("binary"):
        return f"binary, {view['size']} bytes"
    return f"{human_size(view['size'])}" + (f" (first {human_size(FILE_CAP)} shown)" if view["truncated"] else "")


def _entry_label(e: Mapping[str, Any]) -> str:
    return e["name"] + ("/" if e["is_dir"] else "") + (f" → {e['linkname']}" if e["is_symlink"] else "")


def listing_html(root: str, listing: Mapping[str, Any], view: Mapping[str, Any]) -> str:
    """The root directory's table and the open file (its first STATIC_TEXT_CAP bytes)."""
    rows = "".join(f'<tr><td style="{CELL}">{escape(_entry_label(e))}</td>'
                   f'<td style="{CELL}">{"" if e["is_dir"] else human_size(e["size"])}</td></tr>'
                   for e in listing.get("entries", ()))
    parts = [f'<div class="envd-static envd-browser" style="{BOX}">',
             f'<div style="padding:4px 8px;font-weight:600">{escape(root)}</div>']
    if listing.get("error"):
        parts.append(f'<div style="padding:2px 8px">{escape(listing["error"])}</div>')
    parts.append(f'<table style="{TABLE}"><tbody>{rows}</tbody></table>')
    if listing.get("more"):
        parts.append(f'<div style="padding:2px 8px">… {listing["more"]} more entries</div>')
    if view:
        parts.append(f'<div style="padding:4px 8px;font-weight:600">{escape(view["path"])} · '
                     f'{escape(describe(view))}</div>')
        if view.get("text"):
            parts.append(f'<pre style="{LOG};max-height:24em">{escape(view["text"][:STATIC_TEXT_CAP])}</pre>')
    parts.append("</div>")
    return "".join(parts)


def titled(bundle: dict[str, str], title: str) -> dict[str, str]:
    """A listing's static bundle under its browser's title (which filesystem it is)."""
    if not title:
        return bundle
    return {"text/plain": f"{title}\n{bundle['text/plain']}",
            "text/html": f"<div style='{BOX};font-weight:600'>{escape(title)}</div>{bundle['text/html']}"}


def listing_text(root: str, listing: Mapping[str, Any], view: Mapping[str, Any]) -> str:
    lines = [f"{root}: {len(listing.get('entries', ()))} entries" + (f" ({listing['error']})"
                                                                    if listing.get("error") else "")]
    lines += [f"  {_entry_label(e)}" for e in listing.get("entries", ())[:50]]
    if view:
        lines.append(f"{view['path']}: {describe(view)}")
    return "\n".join(lines)
