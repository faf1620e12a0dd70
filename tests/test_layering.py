"""The pure layers must stay importable without grpc, IPython or widgets.

Each check runs in a fresh interpreter so modules imported by other tests do not hide
an import the layer itself makes.
"""

import subprocess
import sys

import pytest

FORBIDDEN = ("grpc", "IPython", "ipywidgets", "anywidget")


def imported_modules(package: str) -> set[str]:
    """Every module a fresh interpreter holds after importing ``package`` and all its modules."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


def imported_top_level_modules(package: str) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(package)}


def imported_envd_layers(package: str) -> set[str]:
    """Which of our own layers importing ``package`` (and all its modules) pulls in."""
    return {name.split(".")[1] for name in imported_modules(package) if name.startswith("envd_jupyter.")}


@pytest.mark.parametrize("package", ["envd_jupyter.llb", "envd_jupyter.scheduler"])
def test_pure_layers_import_no_grpc_or_ipython(package):
    assert not imported_top_level_modules(package) & set(FORBIDDEN)


@pytest.mark.parametrize("package", ["envd_jupyter.buildkit", "envd_jupyter.lang", "envd_jupyter.history"])
def test_library_layers_import_no_notebook_modules(package):
    assert not imported_top_level_modules(package) & {"IPython", "ipywidgets", "anywidget"}


@pytest.mark.parametrize("package, allowed", [
    ("envd_jupyter.llb", {"llb", "_errors", "_proto"}),
    ("envd_jupyter.scheduler", {"scheduler", "_errors"}),
    ("envd_jupyter.buildkit", {"buildkit", "llb", "_errors", "_proto"}),
    ("envd_jupyter.lang", {"lang", "llb", "buildkit", "_errors", "_proto"}),
    ("envd_jupyter.fleet", {"fleet", "buildkit", "scheduler", "llb", "_errors", "_proto"}),
    ("envd_jupyter.history", {"history", "buildkit", "llb", "_errors", "_proto"}),
    # the top layer (the jupyter_server extension): the fleet, the daemons' history and the archive, no kernel side
    ("envd_jupyter.server", {"server", "fleet", "history", "buildkit", "scheduler", "llb", "_errors", "_proto"}),
])
def test_each_layer_imports_only_the_layers_below_it(package, allowed):
    assert imported_envd_layers(package) <= allowed


def test_the_fleet_imports_no_notebook_modules():
    assert not imported_top_level_modules("envd_jupyter.fleet") & {"IPython", "ipywidgets", "anywidget"}


def test_the_server_extension_imports_nothing_of_the_kernel_side():
    """It runs in the Jupyter server's process: no IPython, widgets or kernel."""
    assert not imported_top_level_modules("envd_jupyter.server") & {"IPython", "ipywidgets", "anywidget", "ipykernel"}


def test_loading_the_package_costs_nothing_until_the_extension_loads():
    """``import envd_jupyter`` (what ``%load_ext`` does first) imports no layer and no grpc."""
    code = "import sys, envd_jupyter; print(sorted(n for n in sys.modules if n.startswith(('envd_jupyter.', 'grpc'))))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
