"""envd-jupyter: step-through BuildKit builds from Python and Jupyter.

``%load_ext envd_jupyter`` registers the ``%%envd`` magics; the libraries (``llb``, ``buildkit``,
``scheduler``, ``lang``, ``fleet``) are imported only when used, so a plain script pays for none
of the notebook layer.
"""

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    from envd_jupyter.notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from envd_jupyter.notebook import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_labextension_paths() -> list[dict]:
    """Where `jupyter labextension develop` finds the built panel (scripts/labext-build makes it)."""
    return [{"src": "labextension", "dest": "envd-jupyter"}]
