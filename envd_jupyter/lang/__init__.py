"""envd's build language on the LLB IR.

``load_file("build.envd")`` / ``exec_cell(source)`` (Starlark, go.starlark.net) and
``from_cog_yaml("cog.yaml")`` record an Environment; ``compile_environment`` turns it into the
staged graph (base → parallel envd-managed branches joined by merge → sequential user steps)
with its image config; ``image(ref).apt_packages([...]).run("...")`` is the chaining form;
``explain_rebuild(previous, current)`` says why a build re-ran. ``Workspace`` keeps what a notebook's
cells (Python or Starlark) gave, by cell id and by state name, and the Definition last solved per name.
Starlark runs in a worker process bounded by ``EvalLimits``: no file can crash or hang the caller.
Compiling never changes its input: each step returns a new Environment or state.
"""

from envd_jupyter.lang._build import EnvironmentSolve, solve_environment
from envd_jupyter.lang._chain import EnvdState, diff, from_environment, image, merge
from envd_jupyter.lang._cog import CogWarning, from_cog_yaml
from envd_jupyter.lang._environment import Environment
from envd_jupyter.lang._errors import (
    CellError,
    CogConfigError,
    EnvdArgumentError,
    EnvdError,
    EnvdLoadError,
    EnvdSyntaxError,
    Location,
    PipConflictError,
    UnknownFunctionError,
)
from envd_jupyter.lang._explain import RebuildReport, explain_rebuild
from envd_jupyter.lang._functions import EnvdFunctions
from envd_jupyter.lang._graph import CACHE_IDS, EnvdBuild, compile_environment, compile_for_caps
from envd_jupyter.lang._image_config import ImageConfig
from envd_jupyter.lang._sandbox import DEFAULT_LIMITS, EvalLimitError, EvalLimits
from envd_jupyter.lang._starlark_loader import exec_cell, load_file
from envd_jupyter.lang._workspace import Cell, Workspace

__all__ = [
    "CACHE_IDS", "Cell", "CellError", "CogConfigError", "CogWarning", "DEFAULT_LIMITS", "EnvdArgumentError", "EnvdBuild",
    "EnvdError", "EnvdFunctions", "EnvdLoadError", "EnvdState", "EnvdSyntaxError", "Environment",
    "EnvironmentSolve", "EvalLimitError", "EvalLimits",
    "ImageConfig", "Location", "PipConflictError", "RebuildReport", "UnknownFunctionError",
    "Workspace", "compile_environment", "compile_for_caps", "diff", "exec_cell",
    "explain_rebuild", "from_cog_yaml", "from_environment", "image", "load_file", "merge",
    "solve_environment",
]
