"""The pure layers must stay importable without grpc, IPython or widgets.

Each check runs in a fresh interpreter so modules imported by other tests do not hide
an import the layer itself makes.
"""

import subprocess
import sys

import pytest

FORBIDDEN = ("grpc", "IPython", "ipywidgets", "anywidget")


def imported_top_level_modules(package: str) -> set[str]:
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('\\n'.join(sorted({n.split('.')[0] for n in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("package", ["envd_jupyter.llb", "envd_jupyter.scheduler"])
def test_pure_layers_import_no_grpc_or_ipython(package):
    assert not imported_top_level_modules(package) & set(FORBIDDEN)


@pytest.mark.parametrize("package", ["envd_jupyter.buildkit", "envd_jupyter.lang"])
def test_library_layers_import_no_notebook_modules(package):
    assert not imported_top_level_modules(package) & {"IPython", "ipywidgets", "anywidget"}
