"""envd v1's ``install`` namespace (pkg/lang/frontend/starlark/v1/install): what each call records.

Arguments, defaults and refusals follow envd's rules; what each group compiles to is in ``_graph``
and ``_toolchains``. Every call records one group (one cacheable step, one branch of the managed
stage), except ``python``/``conda``/``cuda``, which configure the environment itself.
"""

from __future__ import annotations

from envd_jupyter.lang._environment import (
    Environment, as_location, bool_arg, string_arg, string_list,
)
from envd_jupyter.lang._errors import EnvdArgumentError
from envd_jupyter.lang._untrusted import allowed_roots, context_relative, resolve_inside

PYTHON_DEFAULT = "3.11"  # envd's PythonVersionDefault
CUDNN_DEFAULT = "8"  # envd's CUDNNVersionDefault


def python_version(rule: str, version: str, at) -> str:
    """envd's getAppropriatePythonVersion: "" or "3" mean the default, 2.x is refused, else 3.x."""
    if version.startswith("2"):
        raise EnvdArgumentError(f"{rule}: envd doesn't support Python {version}", at)
    if version in ("", "3"):
        return PYTHON_DEFAULT
    if not version.startswith("3."):
        raise EnvdArgumentError(f"{rule}: python version {version} is not supported", at)
    return version


def vscode_plugin(value: str, at) -> tuple[str, str, str]:
    """(publisher, extension, version or "") as envd's vscode.ParsePlugin reads ``publisher.extension[-version]``."""
    publisher, dot, rest = value.partition(".")
    if not dot or not publisher or not rest:
        raise EnvdArgumentError(f"install.vscode_extensions: {value!r}: invalid publisher (want publisher.extension)",
                                at)
    extension, dash, version = rest.rpartition("-")
    if not dash or not version[:1].isdigit():
        return publisher, rest, ""
    return publisher, extension, version


class Install:
    def __init__(self, env: Environment):
        self._env = env

    def python(self, version: str = PYTHON_DEFAULT, *, _at=None) -> None:
        at = as_location(_at)
        version = python_version("install.python", string_arg("install.python", "version", version, at), at)
        self._env.python_version, self._env.python_at = version, at

    def conda(self, use_mamba: bool = False, *, _at=None) -> None:
        """Python comes from a conda environment named envd (micromamba or miniconda) instead of the base image."""
        at = as_location(_at)
        self._env.conda = (bool_arg("install.conda", "use_mamba", use_mamba, at), at)

    def uv(self, python_version: str = PYTHON_DEFAULT, *, _at=None) -> None:
        at = as_location(_at)
        version = string_arg("install.uv", "python_version", python_version, at)
        self._env.add_group("uv", (version,), at)
        self._env.config = self._env.config.with_env(UV_LINK_MODE="copy", UV_PYTHON_PREFERENCE="only-managed")

    def pixi(self, use_pixi_mirror: bool = False, pypi_index: str = "", *, _at=None) -> None:
        at = as_location(_at)
        mirror = bool_arg("install.pixi", "use_pixi_mirror", use_pixi_mirror, at)
        index = string_arg("install.pixi", "pypi_index", pypi_index, at)
        self._env.add_group("pixi", (), at, mirror=mirror, pypi_index=index)

    def r_lang(self, *, _at=None) -> None:
        self._env.add_group("r", (), as_location(_at))

    def julia(self, *, _at=None) -> None:
        self._env.add_group("julia", (), as_location(_at))
        self._env.config = self._env.config.with_path_prefix("/opt/julia/bin")

    def rust(self, version: str = "", *, _at=None) -> None:
        at = as_location(_at)
        self._env.add_group("rust", (string_arg("install.rust", "version", version, at),), at)
        self._env.config = self._env.config.with_env(CARGO_HOME="/opt/rust").with_path_prefix("/opt/rust/bin")

    def go(self, version: str = "", *, _at=None) -> None:
        at = as_location(_at)
        self._env.add_group("go", (string_arg("install.go", "version", version, at),), at)
        self._env.config = self._env.config.with_path_prefix("/usr/local/go/bin")

    def nodejs(self, version: str = "", *, _at=None) -> None:
        at = as_location(_at)
        self._env.add_group("nodejs", (string_arg("install.nodejs", "version", version, at),), at)
        self._env.config = self._env.config.with_path_prefix("/opt/nodejs/bin")

    def apt_packages(self, name=None, *, _at=None) -> None:
        at = as_location(_at)
        self._env.add_group("apt", string_list("install.apt_packages", "name", name, at), at)

    def python_packages(self, name=None, requirements: str = "", local_wheels=None, *, _at=None) -> None:
        at = as_location(_at)
        names = string_list("install.python_packages", "name", name, at)
        wheels = tuple(context_relative(w, "install.python_packages: local wheel", at, EnvdArgumentError)
                       for w in string_list("install.python_packages", "local_wheels", local_wheels, at))
        requirements = string_arg("install.python_packages", "requirements", requirements or "", at)
        req_text = ""
        if requirements:
            path = resolve_inside(self._env.context, requirements, allowed_roots(self._env.context, at),
                                  "install.python_packages: requirements file", at, EnvdArgumentError)
            if not path.is_file():
                raise EnvdArgumentError(f"install.python_packages: requirements file {path} not found", at)
            req_text = path.read_text()
        if not (names or req_text or wheels):
            raise EnvdArgumentError("install.python_packages: give name, requirements or local_wheels", at)
        self._env.add_group("pip", names, at, requirements=req_text, local_wheels=wheels)

    def conda_packages(self, name=None, channel=None, env_file: str = "", *, _at=None) -> None:
        at = as_location(_at)
        names = string_list("install.conda_packages", "name", name, at)
        channels = string_list("install.conda_packages", "channel", channel, at)
        env_file = string_arg("install.conda_packages", "env_file", env_file, at)
        if env_file and (names or channels):
            raise EnvdArgumentError("install.conda_packages: env_file and name/channel are mutually exclusive", at)
        if self._env.conda is None:
            raise EnvdArgumentError("install.conda_packages: cannot install conda packages when conda is not "
                                    "installed (call install.conda() first)", at)
        if not (names or env_file):
            raise EnvdArgumentError("install.conda_packages: give name or env_file", at)
        self._env.add_group("conda", names, at, channel=channels, env_file=env_file)

    def r_packages(self, name, *, _at=None) -> None:
        at = as_location(_at)
        names = string_list("install.r_packages", "name", name, at)
        if not names:
            raise EnvdArgumentError("install.r_packages: Can not install empty R package", at)
        self._env.add_group("r_packages", names, at)

    def julia_packages(self, name, *, _at=None) -> None:
        at = as_location(_at)
        names = string_list("install.julia_packages", "name", name, at)
        if not names:
            raise EnvdArgumentError("install.julia_packages: Can not install empty Julia package", at)
        self._env.add_group("julia_packages", names, at)
        self._env.config = self._env.config.with_env(JULIA_DEPOT_PATH="/opt/julia/user_packages")

    def cuda(self, version: str, cudnn: str = CUDNN_DEFAULT, *, _at=None) -> None:
        """The base image becomes nvidia/cuda:<version>-cudnn<cudnn>-<runtime|devel>-<image tag>, as envd picks it."""
        at = as_location(_at)
        version = string_arg("install.cuda", "version", version, at)
        cudnn = string_arg("install.cuda", "cudnn", cudnn, at) or CUDNN_DEFAULT
        self._env.cuda = (version, cudnn, at)

    def vscode_extensions(self, name, *, _at=None) -> None:
        at = as_location(_at)
        plugins = string_list("install.vscode_extensions", "name", name, at)
        for plugin in plugins:
            vscode_plugin(plugin, at)
        if plugins:
            self._env.add_group("vscode", plugins, at)

    def codex(self, version: str = "", *, _at=None) -> None:
        at = as_location(_at)
        self._env.add_group("codex", (string_arg("install.codex", "version", version, at),), at)
