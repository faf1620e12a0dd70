"""Compile a recorded Environment into the staged LLB graph.

base stage ─┬─ apt groups (chained) ─┐ each branch starts from the same root and is taken as
            ├─ python venv ─┬─ pip group 1 ─┤ diff(root, branch); merge([base, diffs...]) joins
            │               └─ pip group 2 ─┤ them, so changing one group re-runs only that branch
            └─ http files ──────────────────┘ (pip groups branch from the venv root)
managed stage = merge(...) in ``layers.arrange`` order ── user stage: run / io.copy, written order.

Daemons without MergeOp/DiffOp get ``parallel=False``: system installs in one chain, pip groups
still branch from the venv and are joined by copying their venvs (one cacheable step per group).
Package caches are shared cache mounts with fixed ids, so every environment on a daemon reuses them.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

from envd_jupyter import llb
from envd_jupyter.lang._environment import DEFAULT_BASE, Breakpoint, Environment, Group, UserStep
from envd_jupyter.lang import _toolchains as toolchains
from envd_jupyter.lang._errors import EnvdArgumentError, Location
from envd_jupyter.lang._functions import VENV
from envd_jupyter.lang._install import PYTHON_DEFAULT
from envd_jupyter.lang._labels import envd_labels
from envd_jupyter.lang._settings import ENVD_HOME
from envd_jupyter.lang._image_config import DEFAULT_PATH, ImageConfig
from envd_jupyter.lang._layers import LAYERS_LABEL, Layer, arrange, identity_of, layers_label

CACHE_IDS = {
    "/var/cache/apt": "envd-jupyter-apt-archives",
    "/var/lib/apt": "envd-jupyter-apt-lists",
    "/root/.cache/pip": "envd-jupyter-pip",
    "/opt/conda/pkgs": "envd-jupyter-conda-pkgs",
}
CONTEXT = "context"  # name of the local source that carries the build context
DOWNLOADS = "/opt/envd/downloads"
MERGE_CAPS = frozenset({"mergeop", "diffop"})


@dataclass
class EnvdBuild:
    """A compiled environment: the final State, its image config and the named intermediate states."""

    state: llb.State
    image_config: ImageConfig
    stages: dict[str, llb.State] = field(default_factory=dict)
    steps: dict[str, llb.State] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)  # the merge inputs in merge order (parallel form)

    def marshal(self, **kwargs) -> llb.Definition:
        return self.state.marshal(**kwargs)

    def exporter_attrs(self) -> dict[str, str]:
        return self.image_config.exporter_attrs()


def at_location(location: Location | None):
    """Context in which every llb op created records ``location`` as its source."""
    return nullcontext() if location is None else llb.located(location)


def _sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


class _Compiler:
    def __init__(self, env: Environment, network: str | None, parallel: bool):
        self.env, self.network, self.parallel = env, network, parallel
        config = env.config
        self.system_env = {**dict(env.build_env), "PATH": ":".join(DEFAULT_PATH)}
        self.venv_env = self.system_env
        if env.needs_python():
            config = config.with_path_prefix(f"{VENV}/bin").with_env(VIRTUAL_ENV=VENV)
            self.venv_env = {**self.system_env, "PATH": ":".join((f"{VENV}/bin",) + DEFAULT_PATH), "VIRTUAL_ENV": VENV}
        # Build steps see only PATH (+ the venv for pip and user steps): runtime.environ is for the
        # running image, and system installs must not depend on whether a pip group exists.
        self.config = config
        self.owner = env.owner  # config.owner: (uid, gid) of copied and downloaded files
        self.steps: dict[str, llb.State] = {}
        self.layers: list[Layer] = []

    def run(self, state: llb.State, script: str, name: str, *, mounts=(), env=None, workdir=None,
            venv: bool = False) -> llb.State:
        exec_env = {**(self.venv_env if venv else self.system_env), **(env or {})}
        return state.run(_sh(script), env=exec_env, workdir=workdir, mounts=list(mounts),
                         network=self.network, name=name)

    def cache_id(self, path: str) -> str:
        return CACHE_IDS[path]

    def context(self) -> llb.State:
        return llb.local(CONTEXT)

    def base(self) -> llb.State:
        env = self.env
        with at_location(env.base_at):
            if env.base_state is not None:
                if env.cuda is not None:
                    raise EnvdArgumentError("install.cuda picks the base image, so it cannot build on a given "
                                            "start state", env.cuda[2])
                root = env.base_state(self.parallel) if callable(env.base_state) else env.base_state
            else:
                root = llb.image(cuda_image(env) if env.cuda else env.base_image or DEFAULT_BASE)
        if env.apt_source is not None:
            source, at = env.apt_source
            with at_location(at):
                root = root.mkfile("/etc/apt/sources.list", source.encode())
        return root

    def install(self, root: llb.State, group: Group) -> llb.State:
        """One managed install group as one exec on ``root``."""
        with at_location(group.at):
            return getattr(self, f"_install_{group.role}")(root, group)

    def apt_install(self, root: llb.State, packages, name: str) -> llb.State:
        pkgs = " ".join(shlex.quote(p) for p in packages)
        mounts = [llb.cache_mount(d, CACHE_IDS[d], sharing="locked") for d in ("/var/cache/apt", "/var/lib/apt")]
        script = ("rm -f /etc/apt/apt.conf.d/docker-clean && apt-get update && "
                  f"apt-get install -y --no-install-recommends {pkgs}")
        return self.run(root, script, name, mounts=mounts, env={"DEBIAN_FRONTEND": "noninteractive"})

    def _install_apt(self, root, group):
        return self.apt_install(root, group.items, f"[envd] apt-get install {' '.join(group.items)}")

    def python(self, root: llb.State) -> tuple[llb.State, llb.State]:
        """(where conda packages install, the venv pip groups install into): with install.conda() the venv
        sits on the conda environment (and sees its packages), else on the base image's python3."""
        group = _python_group(self.env)
        with at_location(group.at):
            if self.env.conda is None:
                return root, self._install_python(root, group)
            use_mamba, _ = self.env.conda
            version = group.items[0] if group.items else PYTHON_DEFAULT
            env_root = toolchains.conda(self, root, version, use_mamba, self.env.conda_channel)
            venv = self.run(env_root, f"{toolchains.CONDA_ENV}/bin/python -m venv --system-site-packages {VENV}",
                            f"[envd] python {version} venv on the conda environment")
            return env_root, venv

    def _install_python(self, root, group):
        want = group.items[0] if group.items else ""
        check = (f"python3 -c \"import sys; have='%d.%d.%d' % sys.version_info[:3]; want={want!r}; "
                 "sys.exit(0 if (have + '.').startswith(want + '.') else "
                 "'install.python: base image has Python ' + have + ', the environment asks for ' + want)\" && ")
        return self.run(root, (check if want else "") + f"python3 -m venv {VENV}",
                        f"[envd] python {want or '(base image)'} venv")

    def _install_pip(self, root, group):
        index = self.env.pip_index or {}
        flags = ["--disable-pip-version-check"]
        if index.get("url"):
            flags += ["--index-url", index["url"]]
        if index.get("extra_url"):
            flags += ["--extra-index-url", index["extra_url"]]
        if index.get("trust"):
            host = index["url"].split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
            flags += ["--trusted-host", host]
        mounts = [llb.cache_mount("/root/.cache/pip", CACHE_IDS["/root/.cache/pip"], sharing="shared")]
        args = list(group.items)
        requirements = group.option("requirements")
        if requirements:
            req = llb.scratch().mkfile("/requirements.txt", requirements.encode())
            mounts.append(llb.bind_mount("/envd/requirements", req, readonly=True))
            args += ["-r", "/envd/requirements/requirements.txt"]
        wheels = group.option("local_wheels") or ()
        if wheels:
            mounts.append(llb.bind_mount("/envd/context", llb.local(CONTEXT), readonly=True))
            args += [f"/envd/context/{w}" for w in wheels]
        command = " ".join(shlex.quote(a) for a in [f"{VENV}/bin/python", "-m", "pip", "install", *flags, *args])
        return self.run(root, command, f"[envd] pip install {' '.join(group.items) or 'requirements'}",
                        mounts=mounts, venv=True)

    def _install_conda(self, root, group):
        return toolchains.conda_packages(self, root, group, self.env.conda[0])

    def _install_http(self, root, group):
        filename = group.option("filename")
        download = llb.http(group.items[0], filename=filename, checksum=group.option("checksum") or None)
        return root.copy(download, f"/{filename}", f"{DOWNLOADS}/{filename}", create_dest_path=True, owner=self.owner)

    def __getattr__(self, name: str):
        """``_install_<role>`` of the toolchain rules (``_toolchains``)."""
        role = name.removeprefix("_install_")
        if name.startswith("_install_") and role in toolchains.COMPILERS:
            return lambda root, group: toolchains.COMPILERS[role](self, root, group)
        raise AttributeError(name)

    def user_step(self, state: llb.State, step: UserStep) -> llb.State:
        if step.kind == "install":
            return self.install(state, step.group)
        with at_location(step.at):
            if step.kind == "run":
                mounts = [llb.bind_mount(self.config.workdir, llb.local(CONTEXT))] if step.mount_host else []
                script = "set -e\n" + "\n".join(step.commands)
                return self.run(state, script, f"[user] {step.commands[0][:60]}", mounts=mounts,
                                workdir=self.config.workdir, venv=True)
            source = llb.image(step.image) if step.image else llb.local(CONTEXT)
            return state.copy(source, step.source, step.target, create_dest_path=True, allow_wildcard=True,
                              allow_empty_wildcard=True, copy_dir_contents_only=True, owner=self.owner)

    def finish(self, state: llb.State) -> llb.State:
        """envd's last steps: the mount points of runtime.mount, created in the image."""
        for group in self.env.groups_of("mount"):
            with at_location(group.at):
                state = state.mkdir(group.items[0], parents=True, owner=self.owner,
                                    name=f"[envd] create dir for runtime.mount {group.items[0]}")
        return state


# Toolchains each installed in a branch of their own from the base image (envd's language stage).
TOOLCHAINS = ("uv", "pixi", "julia", "rust", "go", "nodejs", "codex")


def _system_groups(env: Environment) -> list[Group]:
    """Groups that install with apt, in one chain: dpkg keeps one status file that branches would overwrite."""
    return env.groups_of("apt") + env.groups_of("r")


def _require(env: Environment, role: str, needs: str, rule: str, language: str) -> None:
    """envd installs R and Julia packages only into an installed language; here that is an error, not a no-op."""
    if env.groups_of(role) and not env.groups_of(needs):
        raise EnvdArgumentError(f"install.{role}: {language} is not installed (call {rule})", env.groups_of(role)[0].at)


def _files_layers(c: _Compiler) -> list[tuple[str, llb.State]]:
    """Layers that are only new files, built on scratch: downloads, VS Code extensions, the dev git config."""
    env, found = c.env, []
    for role in ("http", "vscode"):
        for i, group in enumerate(env.groups_of(role)):
            found.append((f"{role}[{i}]", c.install(llb.scratch(), group)))
    if env.git_config is not None and env.dev:
        name, email, editor, at = env.git_config
        with at_location(at):
            text = f"\n[user]\n\temail = {email}\n\tname = {name}\n[core]\n\teditor = {editor}\n"
            found.append(("git_config", llb.scratch().mkfile(f"{ENVD_HOME}/.gitconfig", text.encode(),
                                                              owner=c.owner, name="[envd] git config")))
    return found


def _managed_parallel(c: _Compiler, base: llb.State, previous: Sequence[str],
                      weights: Mapping[str, float] | None) -> llb.State:
    env, layers = c.env, []

    def diffed(key: str, root: llb.State, upper: llb.State, at: Location | None, needs: str | None = None):
        with at_location(at):
            layers.append(Layer(key, upper, llb.diff(root, upper), identity_of(upper), needs))
        return upper

    def branch(key: str, root: llb.State, group: Group, needs: str | None = None) -> llb.State:
        c.steps[key] = upper = c.install(root, group)
        return diffed(key, root, upper, group.at, needs)

    apt = base  # apt groups share dpkg's one status file, so they chain within a single branch
    for i, group in enumerate(_system_groups(env)):
        apt = c.steps[f"{group.role}[{i}]" if group.role == "r" else f"apt[{i}]"] = c.install(apt, group)
    if apt is not base:
        diffed("apt", base, apt, _system_groups(env)[0].at)
    for i, group in enumerate(env.groups_of("r_packages")):
        branch(f"r_packages[{i}]", apt, group, needs="apt")
    if env.needs_python():
        conda_root, c.steps["python"] = c.python(base)
        python_root = diffed("python", base, c.steps["python"], _python_group(env).at)
        for i, group in enumerate(env.groups_of("pip")):
            branch(f"pip[{i}]", python_root, group, needs="python")
        for i, group in enumerate(env.groups_of("conda")):
            branch(f"conda[{i}]", conda_root, group, needs="python")
    for role in TOOLCHAINS:
        for i, group in enumerate(env.groups_of(role)):
            branch(f"{role}[{i}]", base, group)
    for i, group in enumerate(env.groups_of("julia_packages")):
        branch(f"julia_packages[{i}]", c.steps["julia[0]"], group, needs="julia[0]")
    for key, files in _files_layers(c):
        c.steps[key] = files
        layers.append(Layer(key, files, files, identity_of(files)))
    if not layers:
        return base
    c.layers = arrange(layers, previous, weights)
    c.config = c.config.with_labels(**{LAYERS_LABEL: layers_label(c.layers)})
    with at_location(env.base_at):
        return llb.merge([base, *(layer.state for layer in c.layers)])


def _managed_sequential(c: _Compiler, base: llb.State) -> llb.State:
    """No MergeOp/DiffOp: system installs in a chain, pip groups still as branches from the venv.

    Each pip group installs into its own copy of the venv; one FileOp copies every branch's venv
    over the venv root. Changing one pip group re-runs that branch and the (cheap) copy only.
    Unlike a merge, a file a branch deletes from the shared venv survives from the others.
    Everything else installs in a chain, in the parallel form's order.
    """
    env, state = c.env, base
    for i, group in enumerate(_system_groups(env)):
        state = c.steps[f"{group.role}[{i}]" if group.role == "r" else f"apt[{i}]"] = c.install(state, group)
    for i, group in enumerate(env.groups_of("r_packages")):
        state = c.steps[f"r_packages[{i}]"] = c.install(state, group)
    if env.needs_python():
        conda_root, venv = c.python(state)
        state = c.steps["python"] = venv
        actions = None
        for i, group in enumerate(env.groups_of("pip")):
            c.steps[f"pip[{i}]"] = branch = c.install(state, group)
            copy = (llb.copy if actions is None else actions.copy)(
                branch, VENV, VENV, copy_dir_contents_only=True, create_dest_path=True)
            actions = copy
        if actions is not None:
            with at_location(env.python_at or env.base_at):
                state = state.file(actions, name="[envd] join pip groups into the venv")
        for i, group in enumerate(env.groups_of("conda")):
            state = c.steps[f"conda[{i}]"] = c.install(state, group)
    for role in (*TOOLCHAINS, "julia_packages"):
        for i, group in enumerate(env.groups_of(role)):
            state = c.steps[f"{role}[{i}]"] = c.install(state, group)
    for key, files in _files_layers(c):
        c.steps[key] = files
        with at_location(env.base_at):
            state = state.copy(files, "/", "/", copy_dir_contents_only=True, name=f"[envd] add {key}")
    return state


def cuda_image(env: Environment) -> str:
    """envd's GetCUDAImage: nvidia/cuda:<cuda>-cudnn<cudnn>-<runtime, or devel for dev>-<base image, colon dropped>."""
    version, cudnn, _ = env.cuda
    tag = (env.base_image or DEFAULT_BASE).replace(":", "", 1)
    return f"docker.io/nvidia/cuda:{version}-cudnn{cudnn}-{'devel' if env.dev else 'runtime'}-{tag}"


def _python_group(env: Environment) -> Group:
    at = env.python_at or next((g.at for g in env.groups if g.role == "pip"), env.base_at) or Location("<envd>")
    return Group("python", (env.python_version,) if env.python_version else (), at)


def compile_environment(env: Environment, *, network: str | None = None, parallel: bool = True,
                        previous: Sequence[str] = (), weights: Mapping[str, float] | None = None) -> EnvdBuild:
    """The staged graph for ``env``; ``network`` ("host", "none" or None for sandbox) applies to every exec.

    ``previous`` (layer identities of the last image, from its ``LAYERS_LABEL``) and ``weights``
    (seconds per layer key) choose the merge order, see ``layers``; they never change the files.
    """
    _require(env, "r_packages", "r", "install.r_lang()", "R")
    _require(env, "julia_packages", "julia", "install.julia()", "Julia")
    c = _Compiler(env, network, parallel)
    base = c.base()
    managed = _managed_parallel(c, base, previous, weights) if parallel else _managed_sequential(c, base)
    marks: dict[int, Breakpoint] = {}  # by the number of user steps before it; the first call wins
    for mark in env.breakpoints:
        marks.setdefault(mark.after, mark)
    state = managed = _marked(managed, marks.get(0))
    for i, step in enumerate(env.user_steps):
        state = _marked(c.user_step(state, step), marks.get(i + 1))
        c.steps[f"user[{i}]"] = state
    state = c.finish(state)
    config = c.config.with_labels(**envd_labels(env, c.config))
    return EnvdBuild(state, config, {"base": base, "managed": managed, "user": state}, c.steps, c.layers)


def _marked(state: llb.State, mark: Breakpoint | None) -> llb.State:
    """``state`` marked for steppers where a ``breakpoint()`` was recorded (metadata: digests unchanged)."""
    if mark is None:
        return state
    if state.is_scratch:
        raise EnvdArgumentError("breakpoint: nothing is built yet to pause after", mark.at)
    return state.breakpoint()


def accepts_merge(caps) -> bool:
    """Whether a daemon with ``caps`` (``buildkit.Caps`` or its LLB cap ids) takes the parallel form."""
    return MERGE_CAPS <= frozenset(getattr(caps, "llb", caps))


def compile_for_caps(env: Environment, caps, *, network: str | None = None, **order) -> EnvdBuild:
    """Parallel when the daemon advertises both MergeOp and DiffOp, else the sequential equivalent.

    ``caps`` is what ``Client.caps()`` returns, or its ``.llb`` cap ids.
    """
    return compile_environment(env, network=network, parallel=accepts_merge(caps), **order)
