"""The notebook layer: ``%%envd`` cell magics and the widgets they display.

A thin skin: each magic parses its arguments, calls one library function (``lang.Workspace``,
``fleet.Fleet``, ``buildkit``) and displays the result with a ``text/plain`` and static HTML form,
so notebooks executed headless keep what matters.
"""

from envd_jupyter.notebook._magics import Envd


def load_ipython_extension(ipython) -> None:
    if "Envd" not in ipython.magics_manager.registry:
        ipython.register_magics(Envd(shell=ipython))


def unload_ipython_extension(ipython) -> None:
    magics = ipython.magics_manager.registry.get("Envd")
    if magics is not None:
        magics.close()


__all__ = ["Envd", "load_ipython_extension", "unload_ipython_extension"]
