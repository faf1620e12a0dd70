"""The chaining form from envd's state-based proposal: ``image(ref).apt_packages([...]).run("...")``.

Each method returns a new immutable ``EnvdState`` recording into a copy of the Environment, so a
chain compiles to exactly the graph the equivalent envd functions give: installs before the
first ``run``/``copy`` join the envd-managed parallel stage; installs written after a user step
stay where they were written (sequential), because in a chain the order is the user's.
``merge([...])`` and ``diff(a, b)`` are the advanced statements; their result starts a new chain.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from envd_jupyter import llb
from envd_jupyter.lang._environment import Environment, UserStep, as_location
from envd_jupyter.lang._errors import EnvdArgumentError
from envd_jupyter.lang._functions import EnvdFunctions
from envd_jupyter.lang._graph import EnvdBuild, accepts_merge, at_location, compile_environment
from envd_jupyter.lang._image_config import ImageConfig


# The methods that continue a chain (what ``state.name(...)`` may call from Starlark).
CHAIN_METHODS = ("python", "apt_packages", "python_packages", "conda_packages", "http", "run", "copy", "environ",
                 "expose", "pip_index", "merge", "breakpoint")


class EnvdState:
    """An environment under construction; methods mirror envd v1 functions and return new states."""

    def __init__(self, env: Environment, *, network: str | None = None, parallel: bool = True):
        self._env, self._network, self._parallel = env, network, parallel

    def _next(self, record) -> EnvdState:
        env = self._env.clone()
        before = len(env.groups)
        record(EnvdFunctions(env))
        if self._env.user_steps and len(env.groups) > before:
            for group in env.groups[before:]:
                env.user_steps.append(UserStep("install", group.at, group=group))
            del env.groups[before:]
        return EnvdState(env, network=self._network, parallel=self._parallel)

    def python(self, version: str = "3.11", *, _at=None) -> EnvdState:
        at = as_location(_at)
        return self._next(lambda f: f.install.python(version, _at=at))

    def apt_packages(self, name, *, _at=None) -> EnvdState:
        at = as_location(_at)
        return self._next(lambda f: f.install.apt_packages(name, _at=at))

    def python_packages(self, name=None, requirements: str = "", local_wheels=None, *, _at=None) -> EnvdState:
        at = as_location(_at)
        return self._next(lambda f: f.install.python_packages(name, requirements, local_wheels, _at=at))

    def conda_packages(self, name=None, channel=None, env_file: str = "", *, _at=None) -> EnvdState:
        at = as_location(_at)
        return self._next(lambda f: f.install.conda_packages(name, channel, env_file, _at=at))

    def http(self, url: str, checksum: str = "", filename: str = "", *, _at=None) -> EnvdState:
        at = as_location(_at)
        return self._next(lambda f: f.io.http(url, checksum, filename, _at=at))

    def run(self, commands, mount_host: bool = False, *, _at=None) -> EnvdState:
        """``commands``: one shell command, or a list run as one step (envd's ``run`` takes only lists)."""
        at = as_location(_at)
        commands = [commands] if isinstance(commands, str) else commands
        return self._next(lambda f: f.run(commands, mount_host, _at=at))

    def copy(self, source: str, target: str, image: str = "", *, _at=None) -> EnvdState:
        at = as_location(_at)
        return self._next(lambda f: f.io.copy(source, target, image, _at=at))

    def environ(self, env=None, extra_path=None, *, _at=None) -> EnvdState:
        at = as_location(_at)
        return self._next(lambda f: f.runtime.environ(env, extra_path, _at=at))

    def expose(self, envd_port: int, *, _at=None) -> EnvdState:
        at = as_location(_at)
        return self._next(lambda f: f.runtime.expose(envd_port, _at=at))

    def pip_index(self, url: str, extra_url: str = "", trust: bool = False, *, _at=None) -> EnvdState:
        at = as_location(_at)
        return self._next(lambda f: f.config.pip_index(url, extra_url, trust, _at=at))

    def breakpoint(self, *, _at=None) -> EnvdState:
        """The same state, marked so steppers pause once it is built (``EnvdFunctions.breakpoint``)."""
        at = as_location(_at)
        return self._next(lambda f: f.breakpoint(_at=at))

    def merge(self, *others: EnvdState, _at=None) -> EnvdState:
        return merge([self, *others], _at=as_location(_at))

    @property
    def environment(self) -> Environment:
        return self._env.clone()

    def build(self, caps=None) -> EnvdBuild:
        """Compiled; with ``caps`` (``Client.caps()`` or its ``.llb`` ids), in the form that daemon accepts."""
        return self._compile(caps is None or accepts_merge(caps))

    def _compile(self, parallel: bool) -> EnvdBuild:
        return compile_environment(self._env, network=self._network, parallel=self._parallel and parallel)

    @property
    def state(self) -> llb.State:
        return self.build().state

    @property
    def image_config(self) -> ImageConfig:
        return self.build().image_config

    def marshal(self, caps=None, **marshal_options) -> llb.Definition:
        """The llb.Definition in the graph form a daemon with ``caps`` accepts (see ``Environment.marshal``)."""
        return self.build(caps).marshal(**marshal_options)

    def to_dot(self, caps=None, **marshal_options) -> str:
        return self.marshal(caps, **marshal_options).to_dot()


def image(ref: str, *, dev: bool = False, network: str | None = None, parallel: bool = True,
          name: str = "envd", context: Path | None = None, _at=None) -> EnvdState:
    """Start a chain from an image (envd's ``base(image=..., dev=...)``); ``context`` is the build context."""
    env = Environment(name=name, context=context) if context is not None else Environment(name=name)
    EnvdFunctions(env).base(image=ref, dev=dev, _at=as_location(_at))
    return EnvdState(env, network=network, parallel=parallel)


def from_environment(env: Environment, *, network: str | None = None, parallel: bool = True) -> EnvdState:
    """Continue a recorded environment (a build.envd, a cog.yaml) in the chaining form."""
    return EnvdState(env.clone(), network=network, parallel=parallel)


def rooted_at(env: Environment, start, at) -> Environment:
    """A copy of ``env`` built on ``start`` (an llb.State or a chain state) in place of base()'s image.

    A chain state is taken whole, as a base: what is recorded on top never reorders its steps.
    """
    if isinstance(start, EnvdState):
        return replace(env.clone(), base_state=lambda parallel: start._compile(parallel).state, base_at=at,
                       config=start.image_config)
    if isinstance(start, llb.State):
        return replace(env.clone(), base_state=start, base_at=at)
    raise EnvdArgumentError(f"start: want an llb.State or a state from image(...), got {type(start).__name__}", at)


def _from_state(state, config: ImageConfig, first: EnvdState, at) -> EnvdState:
    env = Environment(name=first._env.name, context=first._env.context, base_state=state, base_at=at, config=config)
    return EnvdState(env, network=first._network, parallel=first._parallel)


def _require_states(rule: str, states, at) -> None:
    """merge()/diff() take chain states; anything else names the user's line, not an AttributeError."""
    for value in states:
        if not isinstance(value, EnvdState):
            raise EnvdArgumentError(f"{rule}: want states from image(...) or merge(...), got {type(value).__name__}", at)


def merge(states: list[EnvdState], *, _at=None) -> EnvdState:
    """Overlay the filesystems of ``states`` (later wins); image config is merged the same way."""
    at = as_location(_at)
    if not states:
        raise EnvdArgumentError("merge: give at least one state", at)
    _require_states("merge", states, at)
    states = list(states)  # compiled later, in the form the whole graph takes
    builds = [s.build() for s in states]
    config = builds[0].image_config
    for b in builds[1:]:
        config = replace(config.with_env(**dict(b.image_config.env)).with_labels(**dict(b.image_config.labels)),
                         path=tuple(dict.fromkeys(b.image_config.path + config.path)),
                         exposed_ports=tuple(dict.fromkeys(config.exposed_ports + b.image_config.exposed_ports)))

    def merged(parallel: bool) -> llb.State:
        with at_location(at):
            return llb.merge([s._compile(parallel).state for s in states])

    return _from_state(merged, config, states[0], at)


def diff(lower: EnvdState, upper: EnvdState, *, _at=None) -> EnvdState:
    """What ``upper`` adds on top of ``lower``, as a state of its own (image config of ``upper``)."""
    at = as_location(_at)
    _require_states("diff", (lower, upper), at)

    def diffed(parallel: bool) -> llb.State:
        with at_location(at):
            return llb.diff(lower._compile(parallel).state, upper._compile(parallel).state)

    return _from_state(diffed, upper.image_config, upper, at)
