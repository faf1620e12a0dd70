"""envd's build language on the LLB IR: envd v1 functions, build.envd files, cog.yaml, explain_rebuild."""

from envd_jupyter.lang.environment import Environment
from envd_jupyter.lang.errors import (
    CogConfigError,
    EnvdArgumentError,
    EnvdError,
    EnvdLoadError,
    EnvdSyntaxError,
    Location,
    UnknownFunctionError,
    UnsupportedFunctionError,
)
from envd_jupyter.lang.functions import EnvdFunctions
from envd_jupyter.lang.image_config import ImageConfig
from envd_jupyter.lang.starlark_loader import exec_cell, load_file

__all__ = [
    "CogConfigError", "EnvdArgumentError", "EnvdError", "EnvdFunctions", "EnvdLoadError", "EnvdSyntaxError",
    "Environment", "ImageConfig", "Location", "UnknownFunctionError", "UnsupportedFunctionError",
    "exec_cell", "load_file",
]
