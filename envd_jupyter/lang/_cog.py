"""cog.yaml → the same staged envd graph, following cog's schema (pkg/config) key by key.

Every key cog accepts is mapped or reported: ``build`` becomes envd calls (one step per role:
system packages, python, pre-install commands, dependencies, the cog SDK, run commands, the source
copied to ``/src``); ``gpu``/``cuda``/``cudnn`` pick the nvidia/cuda base image as cog does
(``_cog_gpu``); ``environment``, ``predict``/``run``, ``train`` and ``concurrency`` become the
image's environment as cog's Dockerfile sets it; ``image``/``model`` name the environment;
``weights`` become runtime mounts at their targets. Duplicate and unknown keys (cog refuses both)
are ``CogWarning``s naming their line; everything else cog refuses is a ``CogConfigError`` there.
Every recorded call carries the cog.yaml line it came from (read from the YAML node marks).
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from envd_jupyter.lang._cog_gpu import CudaChoiceError, base_image as cuda_base_image, choose
from envd_jupyter.lang._environment import Environment, UserStep
from envd_jupyter.lang._errors import CogConfigError, EnvdError, Location
from envd_jupyter.lang._functions import EnvdFunctions
from envd_jupyter.lang._sandbox import DEFAULT_LIMITS
from envd_jupyter.lang._untrusted import check_yaml_aliases

SOURCE_DIR = "/src"
COG_PORT = 5000
TOP_KEYS = {"build", "image", "model", "run", "predict", "train", "concurrency", "environment", "weights"}
BUILD_KEYS = {"gpu", "cuda", "cudnn", "python_version", "python_packages", "pre_install", "python_requirements",
              "system_packages", "sdk_version", "run"}
ENV_DENY = ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONUNBUFFERED", "R8_*", "REPLICATE_*",
            "LIBRARY_PATH", "CUDA_*", "NVIDIA_*", "NV_*", "PGET_*", "HF_ENDPOINT", "HF_HUB_ENABLE_HF_TRANSFER",
            "KUBERNETES_*")
GPU_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PYTHONUNBUFFERED": "1", "NVIDIA_DRIVER_CAPABILITIES": "all",
           "LD_LIBRARY_PATH": "/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64:/usr/local/nvidia/bin"}
_POINTER = re.compile(r"^[^:]+\.py:[A-Za-z_]\w*$")
_WEIGHT_NAME = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*$")


class CogWarning(UserWarning):
    """A cog.yaml key recorded with a caveat (a duplicate, an unknown key, a setting without effect)."""


class _Document:
    """The composed YAML: every node by key path, for lines and for how a scalar was written."""

    def __init__(self, path: Path, root: yaml.Node | None):
        self.path, self.nodes, self.keys = path, {}, {}
        self.duplicates: list[tuple[tuple[str, ...], int]] = []
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                path = prefix + (str(key.value),)
                if path in self.keys:
                    self.duplicates.append((path, key.start_mark.line + 1))
                self.keys[path], self.nodes[path] = key.start_mark.line + 1, value
                self._walk(value, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.keys[prefix + (str(i),)], self.nodes[prefix + (str(i),)] = item.start_mark.line + 1, item
                self._walk(item, prefix + (str(i),))

    def at(self, *keys: str) -> Location:
        return Location(str(self.path), self.keys.get(tuple(keys), 0))

    def error(self, message: str, *keys: str) -> CogConfigError:
        return CogConfigError(f"{'.'.join(keys)}: {message}" if keys else message, self.at(*keys))

    def warn(self, message: str, *keys: str) -> None:
        warnings.warn(CogWarning(f"{self.at(*keys)}: {message}"), stacklevel=3)


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > DEFAULT_LIMITS.source_bytes:
            raise CogConfigError(f"{size} bytes, more than the limit for a cog.yaml ({DEFAULT_LIMITS.source_bytes})",
                                 Location(str(path)))
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.reason if isinstance(err, UnicodeDecodeError) else (err.strerror or str(err))
        raise CogConfigError(f"cannot read cog.yaml: {reason}", Location(str(path))) from None


def _compose(text: str, path: Path) -> yaml.Node | None:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise CogConfigError(f"invalid YAML: {getattr(err, 'problem', err)}",
                             Location(str(path), mark.line + 1 if mark else 0)) from None
    if root is not None:
        check_yaml_aliases(root, path)  # before anything expands them
    return root


def from_cog_yaml(path: str | Path, *, base_image: str | None = None, env: Environment | None = None,
                  sdk: bool = True) -> Environment:
    """Record a cog.yaml as envd calls. ``base_image`` replaces the one cog would pick (``python:<v>-slim``,
    or nvidia/cuda for ``gpu: true``); ``sdk=False`` leaves out the cog SDK (``pip install cog``), which
    an offline build cannot fetch. With ``env``, the calls are recorded into a copy of it.
    """
    path = Path(path).resolve()
    text = _read(path)
    doc = _Document(path, _compose(text, path))
    for keys, line in doc.duplicates:
        warnings.warn(CogWarning(f"{path}:{line}: duplicate key {'.'.join(keys)} (the last one is used; "
                                 "cog refuses duplicates)"), stacklevel=2)
    data: Any = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise CogConfigError(f"must be a mapping with a build: key, got {type(data).__name__}", Location(str(path), 1))
    build = data.get("build") or {}
    if not isinstance(build, dict):
        raise doc.error("must be a mapping", "build")
    for key in sorted(set(data) - TOP_KEYS):
        doc.warn(f"{key}: not a cog.yaml key (cog refuses it); ignored", key)
    for key in sorted(set(build) - BUILD_KEYS):
        doc.warn(f"build.{key}: not a cog.yaml build key (cog refuses it); ignored", "build", key)
    return _Mapping(doc, data, build, env.clone() if env is not None else None, base_image, sdk).record()


class _Mapping:
    def __init__(self, doc: _Document, data: dict, build: dict, env: Environment | None, base_image, sdk: bool):
        self.doc, self.data, self.build, self.sdk, self.base_image = doc, data, build, sdk, base_image
        self.env = env if env is not None else Environment(name=doc.path.parent.name, context=doc.path.parent)
        self.fns = EnvdFunctions(self.env)

    def at(self, *keys: str) -> Location:
        return self.doc.at(*keys)

    def record(self) -> Environment:
        try:
            version = self._python_version()
            self._base(version)
            self._system_and_python(version)
            self._runtime(version)
        except EnvdError as err:
            if isinstance(err, CogConfigError):
                raise
            raise CogConfigError(err.message, err.at) from None
        return self.env

    def _python_version(self) -> str:
        node = self.doc.nodes.get(("build", "python_version"))
        if node is None:
            raise self.doc.error('python_version is required: add it to the build section, e.g. python_version: "3.13"',
                                 *(("build",) if "build" in self.data else ()))
        if node.tag.endswith(":float"):
            raise self.doc.error(f"{node.value} is a YAML number (read as {float(node.value)!r}): quote it, "
                                 f'python_version: "{node.value}"', "build", "python_version")
        if not isinstance(node, yaml.ScalarNode):
            raise self.doc.error('must be a version such as "3.11", got a YAML '
                                 f"{'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}",
                                 "build", "python_version")
        version = str(self.build["python_version"]).strip()
        parts = version.split(".")
        if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
            raise self.doc.error(f'must include major and minor version (e.g. "3.11"), got {version!r}',
                                 "build", "python_version")
        if (int(parts[0]), int(parts[1])) < (3, 10):
            raise self.doc.error("minimum supported Python version is 3.10", "build", "python_version")
        return version

    def _requirements(self) -> list[str]:
        if self.build.get("python_requirements"):
            path = self.doc.path.parent / str(self.build["python_requirements"])
            if not path.is_file():
                raise self.doc.error(f"file {path} does not exist", "build", "python_requirements")
            return [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        return self._strings("python_packages")

    def _base(self, version: str) -> None:
        gpu = self.build.get("gpu", False)
        if not isinstance(gpu, bool):
            raise self.doc.error("must be true or false", "build", "gpu")
        cuda, cudnn = (str(self.build.get(key) or "") for key in ("cuda", "cudnn"))
        at = self.at("build") if "build" in self.data else Location(str(self.doc.path), 1)
        if not gpu:
            for key in ("cuda", "cudnn"):
                if self.build.get(key):
                    self.doc.warn(f"build.{key} has no effect without gpu: true", "build", key)
            self.fns.base(image=self.base_image or f"python:{version}-slim", _at=at)
            return
        try:
            cuda, cudnn, notes = choose(cuda, cudnn, self._requirements())
            image = self.base_image or cuda_base_image(cuda, cudnn)
        except CudaChoiceError as err:
            raise self.doc.error(str(err), "build", "gpu") from None
        for note in notes:
            self.doc.warn(note, "build", "cuda")
        self.fns.base(image=image, _at=at)
        self.fns.install.conda(use_mamba=True, _at=self.at("build", "gpu"))  # cog installs python into the image
        self.env.config = self.env.config.with_env(**GPU_ENV).with_labels(
            **{"run.cog.cuda": cuda, "run.cog.cudnn": cudnn})

    def _system_and_python(self, version: str) -> None:
        fns, build = self.fns, self.build
        fns.install.python(version, _at=self.at("build", "python_version"))
        if build.get("system_packages"):
            fns.install.apt_packages(name=self._strings("system_packages"), _at=self.at("build", "system_packages"))
        for i, command in enumerate(self._strings("pre_install")):
            fns.run([command], _at=self.at("build", "pre_install", str(i)))
        if build.get("python_packages") and build.get("python_requirements"):
            raise self.doc.error("only one of python_packages or python_requirements can be set, not both",
                                 "build", "python_packages")
        if build.get("python_requirements"):
            self._requirements()  # the file must exist
            self._pip(requirements=str(build["python_requirements"]), _at=self.at("build", "python_requirements"))
        if build.get("python_packages"):
            self._pip(name=self._strings("python_packages"), _at=self.at("build", "python_packages"))
        if self.sdk:
            self._pip(name=self._sdk(), _at=self.at("build", "sdk_version") if "sdk_version" in build else self.at("build"))
        for i, command in enumerate(self._run_commands()):
            fns.run([command], _at=self.at("build", "run", str(i)))

    def _pip(self, **arguments) -> None:
        """A pip group; after pre_install commands it stays after them (cog runs them first)."""
        self.fns.install.python_packages(**arguments)
        if self.env.user_steps:
            group = self.env.groups.pop()
            self.env.user_steps.append(UserStep("install", group.at, group=group))

    def _sdk(self) -> list[str]:
        sdk = self.build.get("sdk_version")
        if sdk is None:
            return ["cog"]
        if not isinstance(sdk, str) or not sdk:
            raise self.doc.error('must be a version string such as "0.18.0", or "prerelease"', "build", "sdk_version")
        return ["--pre", "cog"] if sdk == "prerelease" else [f"cog=={sdk}"]

    def _run_commands(self) -> list[str]:
        steps = self.build.get("run") or []
        if not isinstance(steps, list):  # a bare string would otherwise run each character as a step
            raise self.doc.error("must be a list of commands", "build", "run")
        commands = []
        for i, step in enumerate(steps):
            command = step.get("command") if isinstance(step, dict) else step
            if not isinstance(command, str):
                raise self.doc.error("each item is a string or {command: ...}", "build", "run", str(i))
            if isinstance(step, dict) and step.get("mounts"):
                raise self.doc.error("mounts (build secrets) are not mapped: a solve would need the secret",
                                     "build", "run", str(i))
            commands.append(command)
        return commands

    def _strings(self, key: str) -> list[str]:
        value = self.build.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            raise self.doc.error("must be a list of strings", "build", key)
        return [str(v) for v in value]

    def _runtime(self, version: str) -> None:
        data, env = self.data, self.env
        if data.get("image") and data.get("model"):
            raise self.doc.error("'model' and 'image' cannot both be set", "model")
        if data.get("model") and re.search(r"[:@][^/]*$", str(data["model"])):
            raise self.doc.error("must be a bare repository: tags and digests are not allowed", "model")
        env.name = str(data.get("image") or data.get("model") or env.name)
        values = self._environment()
        if data.get("run") and data.get("predict"):
            raise self.doc.error("only one of run or predict can be set", "run")
        for key, variable in (("run", "COG_PREDICT_TYPE_STUB"), ("predict", "COG_PREDICT_TYPE_STUB"),
                              ("train", "COG_TRAIN_TYPE_STUB")):
            if data.get(key):
                if not isinstance(data[key], str) or not _POINTER.match(data[key]):
                    raise self.doc.error(f"must be in the form '{'train' if key == 'train' else 'predict'}.py:"
                                         f"{'Trainer' if key == 'train' else 'Predictor'}'", key)
                values[variable] = data[key]
        if data.get("concurrency") is not None:
            values["COG_MAX_CONCURRENCY"] = str(self._concurrency(version))
        self._weights()
        self.fns.io.copy(".", SOURCE_DIR, _at=self.at("predict") if "predict" in data else self.at("run")
                         if "run" in data else Location(str(self.doc.path), 1))
        env.config = replace(env.config.with_env(**values), workdir=SOURCE_DIR, cmd=("python", "-m", "cog.server.http"))
        env.config = env.config.with_ports(str(COG_PORT)).with_labels(
            **{"run.cog.config": json.dumps(data, sort_keys=True, default=str)})

    def _environment(self) -> dict[str, str]:
        """``NAME=value`` entries, checked as cog checks them; they apply to build steps and the image."""
        entries = self.data.get("environment") or []
        if not isinstance(entries, list):
            raise self.doc.error("must be a list of NAME=value strings", "environment")
        values: dict[str, str] = {}
        for i, entry in enumerate(entries):
            name, sep, value = str(entry).partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise self.doc.error(f"{entry!r} is not in the NAME=value format", "environment", str(i))
            if any(name == deny or (deny.endswith("*") and name.startswith(deny[:-1])) for deny in ENV_DENY):
                raise self.doc.error(f"{name} is reserved for internal use", "environment", str(i))
            if name in values:
                raise self.doc.error(f"{name} is already defined", "environment", str(i))
            values[name] = value
        self.env.build_env = tuple(values.items())
        return values

    def _concurrency(self, version: str) -> int:
        value = self.data["concurrency"]
        if not isinstance(value, dict) or not isinstance(value.get("max"), int) or isinstance(value.get("max"), bool):
            raise self.doc.error("needs max: <number of concurrent predictions>", "concurrency")
        for key in sorted(set(value) - {"max", "default_target"}):
            self.doc.warn(f"concurrency.{key}: not a cog.yaml key; ignored", "concurrency", key)
        if value["max"] < 1:
            raise self.doc.error("must be at least 1", "concurrency", "max")
        if tuple(int(p) for p in version.split(".")[:2]) < (3, 11):
            raise self.doc.error("concurrency requires Python 3.11 or higher", "concurrency")
        return value["max"]

    def _weights(self) -> None:
        weights = self.data.get("weights") or []
        if not isinstance(weights, list):
            raise self.doc.error("must be a list of {name, target, source}", "weights")
        described = []
        for i, weight in enumerate(weights):
            keys = ("weights", str(i))
            if not isinstance(weight, dict) or not {"name", "target", "source"} <= set(weight):
                raise self.doc.error("needs name, target and source", *keys)
            if not isinstance(weight["name"], str) or not _WEIGHT_NAME.match(weight["name"]):
                raise self.doc.error(f"name {weight['name']!r} must be lowercase letters, digits and . _ -", *keys, "name")
            if not isinstance(weight["target"], str) or not weight["target"].startswith("/"):
                raise self.doc.error("target must be an absolute path in the container", *keys, "target")
            sources = weight["source"] if isinstance(weight["source"], list) else [weight["source"]]
            if not sources or not all(isinstance(s, dict) and isinstance(s.get("uri"), str) for s in sources):
                raise self.doc.error("source needs uri: (hf://, file://, https:// or a local path)", *keys, "source")
            self.fns.runtime.mount(host_path=sources[0]["uri"], envd_path=weight["target"], _at=self.at(*keys))
            described.append({"name": weight["name"], "target": weight["target"],
                              "sources": [s["uri"] for s in sources]})
        if described:
            self.env.config = self.env.config.with_labels(**{"run.cog.weights": json.dumps(described)})
