"""What line magics return: plain Python values that also display well (``x = %envd_ls s /etc``)."""

from __future__ import annotations

import html
import stat as stat_bits
from datetime import datetime, timezone


class Text(str):
    """A str that displays as itself (no quotes), and as preformatted HTML."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f"<pre class='envd-text'>{html.escape(str(self))}</pre>"

    @classmethod
    def from_bytes(cls, data: bytes, *, limit: int, what: str) -> "Text":
        """UTF-8 text of a file, cut at ``limit`` bytes; binary content is described, not dumped."""
        cut = len(data) > limit
        data = data[:limit]
        if b"\0" in data:
            return cls(f"{what}: binary, {len(data)}{'+' if cut else ''} bytes")
        text = data.decode("utf-8", "replace")
        return cls(text + (f"\n… (cut at {limit} bytes)" if cut else ""))


class Listing(list):
    """Directory entries (``buildkit.FileStat``) that display like ``ls -l``."""

    def __init__(self, path: str, entries):
        super().__init__(entries)
        self.path = path

    def _rows(self) -> list[tuple[str, str, str, str]]:
        rows = []
        for entry in self:
            when = datetime.fromtimestamp(entry.mod_time, timezone.utc).strftime("%Y-%m-%d %H:%M") if entry.mod_time else ""
            name = entry.path + ("/" if entry.is_dir else f" -> {entry.linkname}" if entry.is_symlink else "")
            rows.append((stat_bits.filemode(entry.mode), str(entry.size), when, name))
        return rows

    def __repr__(self) -> str:
        rows = self._rows()
        if not rows:
            return f"{self.path}: empty"
        width = max(len(size) for _, size, _, _ in rows)
        return f"{self.path}:\n" + "\n".join(f"{mode} {size:>{width}} {when} {name}" for mode, size, when, name in rows)

    def _repr_html_(self) -> str:
        # JupyterLab right-aligns HTML table cells and shades <code>: names read as in `ls -l` instead.
        left, right = "text-align:left", "text-align:right"
        mono = f"{left};font-family:var(--jp-code-font-family,monospace)"
        body = "".join(f"<tr><td style='{mono}'>{html.escape(mode)}</td><td style='{right}'>{size}</td>"
                       f"<td style='{left}'>{html.escape(when)}</td><td style='{mono}'>{html.escape(name)}</td></tr>"
                       for mode, size, when, name in self._rows())
        head = "".join(f"<th style='{align}'>{title}</th>" for title, align in
                       (("mode", left), ("size", right), ("modified", left), ("name", left)))
        return (f"<div class='envd-listing'><b>{html.escape(self.path)}</b><table>"
                f"<tr>{head}</tr>{body}</table></div>")


class Exported(Text):
    """What ``%envd_export`` did: the export, the builder that made it and that builder's address."""

    def __new__(cls, state: str, spec: str, builder: str, address: str, seconds: float):
        text = super().__new__(cls, f"exported {state} as {spec} on {builder} ({address}) in {seconds:.1f}s")
        text.state, text.spec, text.builder, text.address = state, spec, builder, address
        return text

    def _repr_mimebundle_(self, **_kwargs):
        from envd_jupyter.notebook._view import SUMMARY_MIME

        return {"text/plain": str(self), "text/html": self._repr_html_(),
                SUMMARY_MIME: {"state": self.state, "export": self.spec, "builder": self.builder}}


class ExitCode(int):
    """A command's exit code (``rc = %envd_exec s -- make``), shown as ``exit code N``."""

    def __repr__(self) -> str:
        return f"exit code {int(self)}"
