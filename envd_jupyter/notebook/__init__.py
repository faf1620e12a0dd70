"""Notebook layer: DAG layout, static SVG/HTML renderers and anywidget widgets over a build's graph and events."""

from ._layout import layout_graph

__all__ = ["layout_graph"]
