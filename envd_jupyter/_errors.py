"""The one exception base every layer's error tree derives from.

IPython prints ``_render_traceback_()`` instead of a traceback when an exception has it, so a
bad argument, a failed RUN or a refused config shows as one short block: the user's mistake,
not forty lines of our internals.
"""

from __future__ import annotations


class ShortError(Exception):
    """An error whose message is the whole story: shown as ``Type: message`` without a traceback."""

    def _render_traceback_(self) -> list[str]:
        lines = str(self).splitlines() or [""]
        return [f"{type(self).__name__}: {lines[0]}", *lines[1:]]
