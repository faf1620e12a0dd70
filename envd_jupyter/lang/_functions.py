"""envd v1's build functions (signatures as in envd's pkg/lang/frontend/starlark/v1) over an Environment.

``EnvdFunctions(env)`` gives ``base``, ``shell``, ``run`` and the ``install``, ``io``, ``runtime``
and ``config`` namespaces, usable from plain Python; ``table()`` flattens them to the dotted
names a build.envd uses. Every function takes a hidden ``_at`` (the Starlark loader passes the
user's file:line; from Python the caller's frame is used).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable

from envd_jupyter.lang._environment import (
    DEFAULT_BASE, Environment, UserStep, as_location, port_arg, string_arg, string_list,
)
from envd_jupyter.lang._errors import EnvdArgumentError, Location, UnknownFunctionError, UnsupportedFunctionError
from envd_jupyter.lang._untrusted import allowed_roots, context_relative, resolve_inside

VENV = "/opt/envd/venv"

# envd v1 functions that exist upstream but need a GPU runtime, IDE or language we do not provide.
UNSUPPORTED_V1 = {
    "install.conda": "needs envd's conda bootstrap; use base(image=...) with conda inside",
    "install.uv": "use install.python_packages", "install.pixi": "use install.conda_packages",
    "install.r_lang": "R is not provided", "install.julia": "Julia is not provided",
    "install.rust": "use run([...]) to install Rust", "install.go": "use run([...]) to install Go",
    "install.nodejs": "use install.apt_packages(name=['nodejs'])",
    "install.r_packages": "R is not provided", "install.julia_packages": "Julia is not provided",
    "install.cuda": "no GPU base images here; use base(image=...) with CUDA inside",
    "install.vscode_extensions": "no IDE integration", "install.codex": "no IDE integration",
    "runtime.daemon": "no envd runtime agent", "runtime.mount": "no envd runtime agent",
    "runtime.init": "no envd runtime agent", "config.gpu": "no GPU runtime",
    "config.cran_mirror": "R is not provided", "config.julia_pkg_server": "Julia is not provided",
    "config.rstudio_server": "no IDE integration", "config.conda_channel": "pass channel= to install.conda_packages",
    "config.repo": "use runtime labels", "config.owner": "no envd runtime agent",
    "config.shm_size": "no envd runtime agent", "git_config": "no envd runtime agent",
    "include": "remote git modules are not fetched; use load() of a local file",
}
# Names that only envd v0 had, with their v1 replacement.
V0_ONLY = {
    "install.system_packages": "install.apt_packages", "io.mount": "runtime.mount",
}


class _Namespace:
    def __init__(self, env: Environment):
        self._env = env


class Install(_Namespace):
    def python(self, version: str = "3.11", *, _at=None) -> None:
        at = as_location(_at)
        self._env.python_version, self._env.python_at = string_arg("install.python", "version", version, at), at

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
        self._env.add_group("conda", names, at, channel=channels, env_file=env_file)


class IO(_Namespace):
    def copy(self, source: str, target: str, image: str = "", *, _at=None) -> None:
        at = as_location(_at)
        source, target, image = (string_arg("io.copy", p, v, at) for p, v in
                                 (("source", source), ("target", target), ("image", image)))
        if not source or not target:
            raise EnvdArgumentError("io.copy: source and target are required", at)
        if not image:
            context_relative(source, "io.copy: source", at, EnvdArgumentError)
        self._env.user_steps.append(UserStep("copy", at, source=source, target=target, image=image))

    def http(self, url: str, checksum: str = "", filename: str = "", *, _at=None) -> None:
        at = as_location(_at)
        url, checksum, filename = (string_arg("io.http", p, v, at) for p, v in
                                   (("url", url), ("checksum", checksum), ("filename", filename)))
        if not url:
            raise EnvdArgumentError("io.http: url is required", at)
        name = filename or url.rstrip("/").rsplit("/", 1)[-1] or "download"
        self._env.add_group("http", (url,), at, checksum=checksum, filename=name)


class Runtime(_Namespace):
    def environ(self, env=None, extra_path=None, *, _at=None) -> None:
        at = as_location(_at)
        env = env or {}
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise EnvdArgumentError("runtime.environ: for parameter env: want dict of string to string", at)
        paths = string_list("runtime.environ", "extra_path", extra_path, at)
        config = self._env.config.with_env(**env)
        self._env.config = config.with_path_prefix(*paths) if paths else config

    def command(self, commands=None, *, _at=None) -> None:
        at = as_location(_at)
        commands = commands or {}
        if not isinstance(commands, dict) or not all(isinstance(v, str) for v in commands.values()):
            raise EnvdArgumentError("runtime.command: for parameter commands: want dict of string to string", at)
        self._env.runtime_commands.update(commands)
        self._env.config = self._env.config.with_labels(
            **{"ai.tensorchord.envd.runtime.commands": json.dumps(self._env.runtime_commands, sort_keys=True)})

    def expose(self, envd_port: int, host_port: int = 0, service: str = "", listen_addr: str = "", *, _at=None) -> None:
        at = as_location(_at)
        port_arg("runtime.expose", "envd_port", envd_port, at)
        port_arg("runtime.expose", "host_port", host_port, at, allow_zero=True)
        service = string_arg("runtime.expose", "service", service, at)
        self._env.config = self._env.config.with_ports(str(envd_port))
        if service:
            self._env.config = self._env.config.with_labels(**{f"ai.tensorchord.envd.service.{service}": str(envd_port)})


class Config(_Namespace):
    def pip_index(self, url: str, extra_url: str = "", trust: bool = False, *, _at=None) -> None:
        at = as_location(_at)
        url = string_arg("config.pip_index", "url", url, at)
        extra_url = string_arg("config.pip_index", "extra_url", extra_url, at)
        if not url:
            raise EnvdArgumentError("config.pip_index: url is required", at)
        self._env.pip_index = {"url": url, "extra_url": extra_url, "trust": bool(trust)}

    def apt_source(self, source: str = "", *, _at=None) -> None:
        at = as_location(_at)
        self._env.apt_source = (string_arg("config.apt_source", "source", source, at), at)

    def jupyter(self, token: str = "", port: int = 8888, *, _at=None) -> None:
        at = as_location(_at)
        token = string_arg("config.jupyter", "token", token, at)
        port_arg("config.jupyter", "port", port, at)
        self._env.add_group("pip", ("jupyterlab",), at, requirements="", local_wheels=())
        self._env.config = self._env.config.with_ports(str(port)).with_labels(
            **{"ai.tensorchord.envd.jupyter.port": str(port)})
        self._env.runtime_commands["jupyter"] = (
            f"jupyter lab --ip 0.0.0.0 --port {port} --no-browser --allow-root --ServerApp.token={token!r}")

    def entrypoint(self, args, *, _at=None) -> None:
        at = as_location(_at)
        self._env.config = replace(self._env.config, entrypoint=string_list("config.entrypoint", "args", args, at))


class EnvdFunctions:
    """The envd v1 surface bound to one Environment."""

    def __init__(self, env: Environment | None = None):
        self.env = env if env is not None else Environment()
        self.install, self.io = Install(self.env), IO(self.env)
        self.runtime, self.config = Runtime(self.env), Config(self.env)

    def base(self, image: str = "", dev: bool = False, *, _at=None, **v0_args) -> None:
        at = as_location(_at)
        if v0_args:
            raise EnvdArgumentError(f"base: unexpected keyword argument {sorted(v0_args)[0]} "
                                    "(base(os=..., language=...) is envd v0; v1 is base(image=..., dev=...))", at)
        image = string_arg("base", "image", image, at)
        if self.env.base_state is not None:
            raise EnvdArgumentError("base: this environment already starts from a given state (start=...); "
                                    "drop base() or the start", at)
        self.env.base_image, self.env.base_at, self.env.dev = image or DEFAULT_BASE, at, bool(dev)
        if dev:
            self.env.config = self.env.config.with_labels(**{"ai.tensorchord.envd.dev": "true"})

    def run(self, commands, mount_host: bool = False, *, _at=None) -> None:
        at = as_location(_at)
        cmds = string_list("run", "commands", commands, at)
        if not cmds:
            raise EnvdArgumentError("run: commands must not be empty", at)
        self.env.user_steps.append(UserStep("run", at, commands=cmds, mount_host=bool(mount_host)))

    def shell(self, name: str = "base", *, _at=None) -> None:
        at = as_location(_at)
        if name not in ("base", "bash", "zsh", "fish"):
            raise EnvdArgumentError(f"shell: unknown shell {name!r} (base, bash, zsh or fish)", at)
        self.env.shell_name = name
        if name in ("zsh", "fish"):
            self.env.add_group("apt", (name,), at)
        self.env.config = self.env.config.with_env(SHELL=f"/bin/{'bash' if name == 'base' else name}")

    def table(self) -> dict[str, Callable[..., Any]]:
        """Dotted envd name → bound function, for interpreters that expose them as globals."""
        names = {"base": self.base, "run": self.run, "shell": self.shell}
        for ns_name in ("install", "io", "runtime", "config"):
            ns = getattr(self, ns_name)
            for attr in dir(type(ns)):
                if not attr.startswith("_"):
                    names[f"{ns_name}.{attr}"] = getattr(ns, attr)
        return names


def unknown_function(name: str, known: list[str], at: Location | None) -> Exception:
    """The envd-style error for a name that is not (or no longer, or not here) a build function."""
    if name in V0_ONLY:
        return UnknownFunctionError(f"{name} is an envd v0 function; envd v1 uses {V0_ONLY[name]}", at)
    if name in UNSUPPORTED_V1:
        return UnsupportedFunctionError(f"{name} is not supported by envd-jupyter: {UNSUPPORTED_V1[name]}", at)
    prefix = name.split(".")[0] + "."
    close = [k for k in known if k.startswith(prefix)] if "." in name else []
    hint = f" (known: {', '.join(sorted(close))})" if close else ""
    return UnknownFunctionError(f"unknown envd v1 function {name}{hint}", at)
