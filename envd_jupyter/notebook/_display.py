"""Show a widget live, then leave its final static picture in the notebook's saved output.

A notebook executed headless (nbclient) saves widget views that no viewer can draw without the
kernel; replacing the display with the widget's ``text/html`` + ``text/plain`` at the end of a
solve keeps the final DAG, progress or scores in the file.
"""

from __future__ import annotations

from typing import Any

import ipywidgets
from IPython.display import display


class StaticBundle:
    """Displays as the given MIME bundle and nothing else."""

    def __init__(self, bundle: dict[str, str]) -> None:
        self.bundle = bundle

    def _repr_mimebundle_(self, **_kwargs: Any) -> dict[str, str]:
        return self.bundle


class BundledBox(ipywidgets.VBox):
    """Several widgets as one output, with their static pictures (``static_bundle()``) in its bundle."""

    def _repr_mimebundle_(self, **kwargs: Any):
        data = super()._repr_mimebundle_(**kwargs) or {}
        return {**data, **combined([child.static_bundle() for child in self.children])}


def combined(bundles: list[dict[str, str]]) -> dict[str, str]:
    """One ``text/plain`` + ``text/html`` bundle of several, in order."""
    return {"text/plain": "\n".join(b["text/plain"] for b in bundles),
            "text/html": "".join(b["text/html"] for b in bundles)}


class LiveDisplay:
    """``widget`` shown under a display handle (``handle`` is None outside IPython)."""

    def __init__(self, widget: Any) -> None:
        self.widget = widget
        self.handle = display(widget, display_id=True)

    def finish(self, *, keep_widget: bool = False) -> None:
        """Push pending state, then replace the live view with the static picture.

        ``keep_widget=True`` keeps the live view (its bundle still carries the static picture,
        which front ends that cannot draw the widget may fall back to).
        """
        flush = getattr(self.widget, "flush", None)
        if flush is not None:
            flush()
        if self.handle is not None:
            self.handle.update(self.widget if keep_widget else StaticBundle(self.widget.static_bundle()))


def show(widget: Any) -> LiveDisplay:
    """Display ``widget`` now; call ``.finish()`` on the result when its build ends."""
    return LiveDisplay(widget)
