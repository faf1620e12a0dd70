"""The failure view: one output for a failed step, whether ``%%envd`` or the stepper hit it.

It shows the failing step, its exit code, its last log lines, the user's cell/file line, and the
files the command saw: the failed step's own filesystem as it was when it failed where the daemon
reported it with the error (BuildKit's solve-error details; read by running ``find``/``stat``/``head``
in a container over those mounts, since the gateway reads files only of solved refs), else the
filesystem the step started from. The note says which one is shown and what the line magics read.

``failure_facts`` is the one shape both views render; ``failure_text`` / ``failure_html`` its static
pictures (the stepper's and ``%%envd``'s), ``failure.js`` / ``stepper.js`` draw it live through
``failureView`` in ``common.js``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from html import escape
from typing import Any, Callable

import traitlets

from ._browse import FILE_CAP, directory_listing, listing_html, listing_text, one_line, titled
from ._tables import BOX, LOG
from ._widgets import _module, _Static

RED = "#c62828"
_STAT_FORMAT = "%f %s %N"  # raw mode (hex), size, name ('name' -> 'target' for a symlink)
_S_IFMT, _S_IFDIR, _S_IFLNK = 0o170000, 0o040000, 0o120000
_KERNEL_DIRS = ("/proc", "/sys")  # in the listing container these are its own, not the failed step's files


@dataclass(frozen=True)
class BrowsedFiles:
    """A filesystem a browser shows: ``list_dir``/``read_file`` over it.

    After a failure ``own`` says whether it is the failed step's own filesystem (else the one it
    started from, and ``why_not_own`` says why).
    """

    list_dir: Callable[[str], list]
    read_file: Callable[[str], bytes]
    own: bool = False
    why_not_own: str = ""


def stage_files(stage: Any, why_not_own: str = "") -> BrowsedFiles:
    """A stage's own solved filesystem (a pause, or the state before a failed step)."""
    return BrowsedFiles(stage.list_dir, lambda path: stage.read_file(path, limit=FILE_CAP + 1),
                        why_not_own=why_not_own)


class MountReader:
    """Lists and reads the failed step's own filesystem with commands in a container over its mounts."""

    def __init__(self, stage: Any):
        self._stage = stage

    def _run(self, argv: list[str]) -> bytes:
        result = self._stage.exec(argv, cwd="/", on_output=lambda _fd, _data: None)
        if result.exit_code != 0:
            error = result.stderr.decode("utf-8", "replace").strip().splitlines()
            raise OSError(error[-1] if error else f"{argv[0]} exited with {result.exit_code}")
        return result.stdout

    def list_dir(self, path: str) -> list[dict[str, Any]]:
        path = posixpath.normpath(path)
        if any(path == top or path.startswith(top + "/") for top in _KERNEL_DIRS):
            raise OSError(f"{path} is the listing container's own kernel filesystem, not the failed step's files")
        out = self._run(["find", path, "-mindepth", "1", "-maxdepth", "1", "-exec", "stat", "-c", _STAT_FORMAT,
                         "{}", "+"])
        return [entry for line in out.decode("utf-8", "replace").splitlines() if (entry := _stat_entry(line))]

    def read_file(self, path: str) -> bytes:
        return self._run(["head", "-c", str(FILE_CAP + 1), path])


def _stat_entry(line: str) -> dict[str, Any] | None:
    """One ``stat -c '%f %s %N'`` line (busybox or GNU) as a listing entry."""
    mode_hex, _, rest = line.partition(" ")
    size, _, named = rest.partition(" ")
    try:
        mode, size_bytes = int(mode_hex, 16), int(size)
    except ValueError:
        return None
    is_symlink = mode & _S_IFMT == _S_IFLNK
    name, _, target = named.partition(" -> ") if is_symlink else (named, "", "")
    return {"name": posixpath.basename(_unquoted(name)), "is_dir": mode & _S_IFMT == _S_IFDIR,
            "is_symlink": is_symlink, "linkname": _unquoted(target), "size": size_bytes}


def _unquoted(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text


def failed_files(stage: Any) -> BrowsedFiles | None:
    """The filesystem the failure view browses (see the module docstring); None when none was kept."""
    if stage is None:
        return None
    if stage.failure is None or not stage.failure.mounts:
        return stage_files(stage, "the daemon did not report the failed step's own filesystem")
    reader = MountReader(stage)
    try:
        reader.list_dir("/")
    except Exception as error:  # no find/stat in the image, or the container API refused: the state before
        return stage_files(stage, f"its own filesystem could not be listed ({one_line(error)})")
    return BrowsedFiles(reader.list_dir, reader.read_file, own=True)


def failure_facts(name: str, error: Any, files: BrowsedFiles | None) -> dict[str, Any]:
    """What the failure view shows (the stepper's ``failure`` trait, ``FailureWidget``'s too)."""
    step = repr(error.step)
    if files is None:
        note, shown = "No filesystem was kept for this failure.", ""
    elif files.own:
        note = (f"Files below: as the failed step {step} saw them when it failed "
                f"(%envd_exec {name} -- CMD runs there too).\n"
                f"%envd_ls / %envd_cat {name}: showing the filesystem before the failed step {step}.")
        shown = "own"
    else:
        note = (f"Files below: the filesystem before the failed step {step} ({files.why_not_own}).\n"
                f"%envd_ls / %envd_cat / %envd_exec {name} -- CMD: {name}: showing the filesystem before "
                f"the failed step {step}.")
        shown = "before"
    return {"state_name": name, "step": error.step, "exit_code": error.exit_code, "location": error.location,
            "log_tail": list(error.log_tail), "note": note, "shown": shown}


def failure_heading(facts: dict[str, Any]) -> str:
    code = "" if facts.get("exit_code") is None else f" with exit code {facts['exit_code']}"
    return f"✗ step {facts['step']!r} failed{code}"


def failure_lines(facts: dict[str, Any]) -> list[str]:
    """The failure's ``text/plain`` lines: heading, the user's line, the log tail, the note."""
    lines = [failure_heading(facts) + (f" ({facts['location']})" if facts.get("location") else "")]
    lines += [f"  | {line}" for line in facts.get("log_tail", ())]
    return lines + (facts.get("note") or "").splitlines()


def failure_html(facts: dict[str, Any]) -> str:
    """The failure in red: heading, the user's line, the log tail, the note (the static picture)."""
    logs = "\n".join(facts.get("log_tail", ()))
    note = "<br>".join(escape(line) for line in (facts.get("note") or "").splitlines())
    return (f"<div class='envd-failure' data-shown='{escape(facts.get('shown', ''))}' style='border:1px solid {RED};"
            f"border-left-width:4px;border-radius:4px;padding:6px 8px;margin:4px 0'>"
            f"<div style='color:{RED};font-weight:600'>{escape(failure_heading(facts))}</div>"
            + (f"<div>made by {escape(facts['location'])}</div>" if facts.get("location") else "")
            + (f"<pre style='{LOG};max-height:none'>{escape(logs)}</pre>" if logs else "")  # all: the error is last
            + f"<div>{note}</div></div>")


def files_bundle(files: BrowsedFiles, title: str) -> dict[str, str]:
    """The static listing of the failure's (or a pause's) filesystem root, under its title."""
    listing = directory_listing(files.list_dir, "/")
    return titled({"text/plain": listing_text("/", listing, {}), "text/html": listing_html("/", listing, {})}, title)


def failure_bundle(facts: dict[str, Any]) -> dict[str, str]:
    """The failure's static picture, without its files (``FailureWidget``'s, and headless ``%%envd``'s)."""
    head = f"{facts['state_name']}: build failed"
    return {"text/plain": "\n".join([head, *failure_lines(facts)]),
            "text/html": f"<div class='envd-static envd-failure-view' style='{BOX}'>"
                         f"<div style='font-weight:600'>{escape(head)}</div>{failure_html(facts)}</div>"}


def files_title(name: str, facts: dict[str, Any]) -> str:
    if facts.get("shown") == "own":
        return f"{name}: files of the failed step {facts['step']!r}, as they were when it failed"
    return f"{name}: the filesystem before the failed step {facts['step']!r}"


class FailureWidget(_Static):
    """The failure (``failure_facts``) as a live view; the browser below it is its own widget."""

    _esm = _module("failure.js")
    failure = traitlets.Dict().tag(sync=True)

    def static_bundle(self) -> dict[str, str]:
        return failure_bundle(self.failure)
