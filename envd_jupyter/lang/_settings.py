"""envd v1's ``io``, ``runtime``, ``config`` and ``data`` namespaces: what each call records.

Arguments, defaults and refusals follow envd (pkg/lang/frontend/starlark/v1/{io,runtime,config,data}).
Runtime settings go where envd puts them: the image config (Env, PATH, ExposedPorts, Entrypoint)
and the runtime graph label ``envd up`` reads (see ``_labels``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import replace

from envd_jupyter.lang._environment import (
    Environment, UserStep, as_location, bool_arg, image_arg, int_arg, port_arg, starlark_type, string_arg,
    string_list,
)
from envd_jupyter.lang._errors import EnvdArgumentError
from envd_jupyter.lang._untrusted import context_relative

ENVD_HOME = "/home/envd"  # envd's home of the envd user (fileutil.EnvdHomeDir)
RSTUDIO_PORT = 8787
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def string_dict(rule: str, param: str, value, at) -> dict[str, str]:
    """envd's IterableMapping of string to string (omitted: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EnvdArgumentError(f"{rule}: for parameter {param}: got {starlark_type(value)}, want dict", at)
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise EnvdArgumentError(f"{rule}: for parameter {param}: want dict of string to string, "
                                    f"got {starlark_type(key)} {key!r} to {starlark_type(item)}", at)
    return dict(value)


class IO:
    def __init__(self, env: Environment):
        self._env = env

    def copy(self, source: str, target: str, image: str = "", *, _at=None) -> None:
        at = as_location(_at)
        source, target = string_arg("io.copy", "source", source, at), string_arg("io.copy", "target", target, at)
        image = image_arg("io.copy", "image", image, at) if image != "" else image
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
        if checksum and not _DIGEST.match(checksum):
            raise EnvdArgumentError(f"io.http: invalid checksum {checksum!r} (want algorithm:hex, e.g. sha256:...)", at)
        name = filename or url.rstrip("/").rsplit("/", 1)[-1] or "download"
        self._env.add_group("http", (url,), at, checksum=checksum, filename=name)


class Runtime:
    def __init__(self, env: Environment):
        self._env = env

    def command(self, commands=None, *, _at=None) -> None:
        at = as_location(_at)
        self._env.runtime = self._env.runtime.with_commands(string_dict("runtime.command", "commands", commands, at))

    def daemon(self, commands, *, _at=None) -> None:
        at = as_location(_at)
        if not isinstance(commands, (list, tuple)):
            raise EnvdArgumentError(f"runtime.daemon: for parameter commands: got {starlark_type(commands)}, "
                                    "want list", at)
        argvs = []
        for command in commands:
            if not isinstance(command, (list, tuple)) or not all(isinstance(a, str) for a in command):
                raise EnvdArgumentError(f"runtime.daemon: invalid daemon commands ({command!r}): want a list of "
                                        "argument lists", at)
            argvs.append(tuple(command))
        self._env.runtime = replace(self._env.runtime, daemon=self._env.runtime.daemon + tuple(argvs))

    def expose(self, envd_port: int, host_port: int = 0, service: str = "", listen_addr: str = "127.0.0.1",
               *, _at=None) -> None:
        at = as_location(_at)
        port_arg("runtime.expose", "envd_port", envd_port, at)
        port_arg("runtime.expose", "host_port", host_port, at, allow_zero=True)
        service = string_arg("runtime.expose", "service", service, at)
        listen_addr = string_arg("runtime.expose", "listen_addr", listen_addr, at)
        try:
            ipaddress.ip_address(listen_addr)
        except ValueError:
            raise EnvdArgumentError(f"runtime.expose: listen_addr must be a valid IP address, got {listen_addr!r}",
                                    at) from None
        self._env.config = self._env.config.with_ports(str(envd_port))
        if service:
            self._env.config = self._env.config.with_labels(**{f"ai.tensorchord.envd.service.{service}": str(envd_port)})
        self._env.runtime = replace(self._env.runtime,
                                    expose=self._env.runtime.expose + ((envd_port, host_port, service, listen_addr),))

    def environ(self, env=None, extra_path=None, *, _at=None) -> None:
        at = as_location(_at)
        values = string_dict("runtime.environ", "env", env, at)
        paths = string_list("runtime.environ", "extra_path", extra_path, at)
        config = self._env.config.with_env(**values)
        self._env.config = config.with_path_prefix(*paths) if paths else config

    def mount(self, host_path="", envd_path: str = "", *, _at=None) -> None:
        """A directory mounted when the image runs; the image gets the mount point (as envd creates it)."""
        at = as_location(_at)
        if not isinstance(host_path, str):
            raise EnvdArgumentError(f"runtime.mount: invalid data source: got {starlark_type(host_path)}", at)
        target = string_arg("runtime.mount", "envd_path", envd_path, at)
        if not target:
            raise EnvdArgumentError("runtime.mount: envd_path is required", at)
        if target == "~" or target.startswith("~/"):
            target = ENVD_HOME + target[1:]
        self._env.runtime = replace(self._env.runtime, mounts=self._env.runtime.mounts + ((host_path, target),))
        self._env.add_group("mount", (target,), at)

    def init(self, commands=None, *, _at=None) -> None:
        at = as_location(_at)
        script = string_list("runtime.init", "commands", commands, at)
        self._env.runtime = replace(self._env.runtime, init_script=self._env.runtime.init_script + (script,))


class Config:
    def __init__(self, env: Environment):
        self._env = env

    def apt_source(self, source: str = "", *, _at=None) -> None:
        at = as_location(_at)
        source = string_arg("config.apt_source", "source", source, at)
        if not source:
            raise EnvdArgumentError("config.apt_source: source is required", at)
        self._env.apt_source = (source, at)

    def gpu(self, count: int = 0, *, _at=None) -> None:
        at = as_location(_at)
        self._env.runtime = replace(self._env.runtime, gpus=int_arg("config.gpu", "count", count, at))

    def jupyter(self, token: str = "", port: int = 8888, *, _at=None) -> None:
        at = as_location(_at)
        token = string_arg("config.jupyter", "token", token, at)
        port_arg("config.jupyter", "port", port, at)
        self._env.add_group("pip", ("jupyterlab",), at, requirements="", local_wheels=())
        self._env.config = self._env.config.with_ports(str(port)).with_labels(
            **{"ai.tensorchord.envd.jupyter.port": str(port)})
        self._env.runtime = self._env.runtime.with_commands({"jupyter": (
            f"jupyter lab --ip 0.0.0.0 --port {port} --no-browser --allow-root --ServerApp.token={token!r}")})

    def cran_mirror(self, url: str = "", *, _at=None) -> None:
        self._env.cran_mirror = string_arg("config.cran_mirror", "url", url, as_location(_at))

    def pip_index(self, url: str, extra_url: str = "", trust: bool = False, *, _at=None) -> None:
        at = as_location(_at)
        url = string_arg("config.pip_index", "url", url, at)
        extra_url = string_arg("config.pip_index", "extra_url", extra_url, at)
        trust = bool_arg("config.pip_index", "trust", trust, at)
        if not url:
            raise EnvdArgumentError("config.pip_index: url is required", at)
        self._env.pip_index = {"url": url, "extra_url": extra_url, "trust": trust}

    def conda_channel(self, channel: str = "", *, _at=None) -> None:
        """The envd conda environment's .condarc (envd writes the text as given)."""
        at = as_location(_at)
        channel = string_arg("config.conda_channel", "channel", channel, at)
        if self._env.conda is None:
            raise EnvdArgumentError("config.conda_channel: cannot config conda when conda is not installed "
                                    "(call install.conda() first)", at)
        self._env.conda_channel = channel

    def julia_pkg_server(self, url: str = "", *, _at=None) -> None:
        at = as_location(_at)
        self._env.julia_pkg_server = string_arg("config.julia_pkg_server", "url", url, at)
        self._env.config = self._env.config.with_env(JULIA_PKG_SERVER=self._env.julia_pkg_server)

    def rstudio_server(self, *, _at=None) -> None:
        """envd installs nothing for it (its R images carry RStudio Server): the port and the command."""
        self._env.config = self._env.config.with_ports(str(RSTUDIO_PORT))
        self._env.runtime = self._env.runtime.with_commands(
            {"rstudio-server": "sudo /usr/lib/rstudio-server/bin/rserver"})

    def entrypoint(self, args, *, _at=None) -> None:
        at = as_location(_at)
        args = string_list("config.entrypoint", "args", args, at)
        self._env.config = replace(self._env.config, entrypoint=self._env.config.entrypoint + args)

    def repo(self, url: str, description: str = "", *, _at=None) -> None:
        at = as_location(_at)
        url, description = string_arg("config.repo", "url", url, at), string_arg("config.repo", "description",
                                                                                 description, at)
        info = {key: value for key, value in (("url", url), ("description", description)) if value}
        self._env.config = self._env.config.with_labels(**{"ai.tensorchord.envd.repo": json.dumps(info)})

    def owner(self, uid: int, gid: int, *, _at=None) -> None:
        at = as_location(_at)
        uid, gid = int_arg("config.owner", "uid", uid, at), int_arg("config.owner", "gid", gid, at)
        if not (0 <= uid <= 65535 and 0 <= gid <= 65535):
            raise EnvdArgumentError(f"config.owner: get a wrong uid or gid ({uid}, {gid}): want 0..65535", at)
        self._env.owner = (uid, gid)

    def shm_size(self, size: int, *, _at=None) -> None:
        at = as_location(_at)
        self._env.runtime = replace(self._env.runtime, shm_size=int_arg("config.shm_size", "size", size, at))


class Data:
    """``data.envd(name)``: an envd-managed data directory, as a value ``runtime.mount(host_path=...)`` takes."""

    PATHS = {"huggingface": "~/.cache/huggingface", "dgl": "~/.dgl"}  # data.path.<name>

    def __init__(self, env: Environment):
        self._env = env

    def envd(self, name: str = "", *, _at=None) -> str:
        return f"envd://{string_arg('data.envd', 'name', name, as_location(_at))}"
