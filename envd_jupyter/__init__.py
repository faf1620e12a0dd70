"""envd-jupyter: step-through BuildKit builds from Python and Jupyter."""

__version__ = "0.1.0"
