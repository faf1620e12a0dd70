"""envd v1's build functions (signatures as in envd's pkg/lang/frontend/starlark/v1) over an Environment.

``EnvdFunctions(env)`` gives the universe rules (``base``, ``shell``, ``run``, ``git_config``) and
the ``install``, ``io``, ``runtime``, ``config`` and ``data`` namespaces, usable from plain Python;
``table()`` flattens them to the dotted names a build.envd uses. Every function takes a hidden
``_at`` (the Starlark loader passes the user's file:line; from Python the caller's frame is used).
``include`` lives in the Starlark loader: it loads files, which only an interpreter can.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

from envd_jupyter.lang._environment import (
    DEFAULT_BASE, Breakpoint, Environment, UserStep, as_location, bool_arg, image_arg, string_arg, string_list,
)
from envd_jupyter.lang._errors import EnvdArgumentError, Location, UnknownFunctionError
from envd_jupyter.lang._install import Install
from envd_jupyter.lang._settings import IO, Config, Data, Runtime

VENV = "/opt/envd/venv"
NAMESPACES = ("install", "io", "runtime", "config", "data")
SHELLS = {"base": "/bin/bash", "bash": "/bin/bash", "zsh": "/usr/bin/zsh", "fish": "/usr/bin/fish"}
# Names that only envd v0 had, with their v1 replacement.
V0_ONLY = {
    "install.system_packages": "install.apt_packages", "io.mount": "runtime.mount",
}


class EnvdFunctions:
    """The envd v1 surface bound to one Environment."""

    def __init__(self, env: Environment | None = None):
        self.env = env if env is not None else Environment()
        self.install, self.io, self.data = Install(self.env), IO(self.env), Data(self.env)
        self.runtime, self.config = Runtime(self.env), Config(self.env)

    def base(self, image: str = "", dev: bool = False, *, _at=None, **v0_args) -> None:
        at = as_location(_at)
        if v0_args:
            raise EnvdArgumentError(f"base: unexpected keyword argument {sorted(v0_args)[0]} "
                                    "(base(os=..., language=...) is envd v0; v1 is base(image=..., dev=...))", at)
        image = image_arg("base", "image", image, at) if image != "" else image
        dev = bool_arg("base", "dev", dev, at)
        if self.env.base_state is not None:
            raise EnvdArgumentError("base: this environment already starts from a given state (start=...); "
                                    "drop base() or the start", at)
        self.env.base_image, self.env.base_at, self.env.dev = image or DEFAULT_BASE, at, dev
        if dev:
            self.env.config = self.env.config.with_labels(**{"ai.tensorchord.envd.dev": "true"})

    def run(self, commands, mount_host: bool = False, *, _at=None) -> None:
        at = as_location(_at)
        cmds = string_list("run", "commands", commands, at)
        mount_host = bool_arg("run", "mount_host", mount_host, at)
        if not cmds:
            raise EnvdArgumentError("run: commands must not be empty", at)
        self.env.user_steps.append(UserStep("run", at, commands=cmds, mount_host=mount_host))

    def breakpoint(self, *, _at=None) -> None:
        """Pause ``%envd_step`` / the stepper once what is recorded so far is built (ours, not envd's).

        The Starlark loader offers it beside envd's rules; ``table()`` stays envd's surface. After a
        ``run``/``io.copy`` it marks that step's result; before any, the envd-managed stage as a whole
        (its installs are parallel branches, whatever order they were written in). Only op metadata
        changes, never a digest, so the cache is shared with the same file without breakpoints.
        """
        self.env.breakpoints.append(Breakpoint(len(self.env.user_steps), as_location(_at)))

    def shell(self, name: str = "base", *, _at=None) -> None:
        """zsh and fish come from apt here (envd downloads oh-my-zsh or a fish release into dev images)."""
        at = as_location(_at)
        name = string_arg("shell", "name", name, at).lower()
        if name not in SHELLS:
            raise EnvdArgumentError(f"shell: unknown shell {name!r} (base, bash, zsh or fish)", at)
        self.env.shell_name = name
        if name in ("zsh", "fish"):
            self.env.add_group("apt", (name,), at)
        self.env.config = self.env.config.with_env(SHELL=SHELLS[name])

    def git_config(self, name: str = "", email: str = "", editor: str = "", *, _at=None) -> None:
        """The envd user's ~/.gitconfig, written into dev images (``base(dev=True)``) as envd writes it."""
        at = as_location(_at)
        values = [string_arg("git_config", p, v, at) for p, v in (("name", name), ("email", email), ("editor", editor))]
        self.env.git_config = (*values, at)

    def table(self) -> dict[str, Callable[..., Any]]:
        """Dotted envd name → bound function, for interpreters that expose them as globals."""
        names = {"base": self.base, "run": self.run, "shell": self.shell, "git_config": self.git_config}
        for ns_name in NAMESPACES:
            ns = getattr(self, ns_name)
            for attr in dir(type(ns)):
                if not attr.startswith("_") and callable(getattr(ns, attr)):
                    names[f"{ns_name}.{attr}"] = getattr(ns, attr)
        return names


def unknown_function(name: str, known: list[str], at: Location | None) -> Exception:
    """The envd-style error for a name that is not (or no longer) a build function, with the closest known name."""
    if name in V0_ONLY:
        return UnknownFunctionError(f"{name} is an envd v0 function; envd v1 uses {V0_ONLY[name]}", at)
    namespace, _, attr = name.rpartition(".")
    prefix = namespace + "." if namespace else ""
    candidates = [k for k in known if k.startswith(prefix) and "." not in k[len(prefix):]]
    close = difflib.get_close_matches(attr, [k[len(prefix):] for k in candidates], n=1, cutoff=0.75)
    if close:
        hint = f" (did you mean {prefix}{close[0]}?)"
    else:
        hint = f" (known: {', '.join(sorted(candidates))})" if prefix and candidates else ""
    return UnknownFunctionError(f"unknown envd v1 function {name}{hint}", at)
