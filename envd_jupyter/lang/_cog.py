"""cog.yaml → the same staged envd graph, one step per role (system deps, python, dependencies, source).

Every recorded call carries the cog.yaml line it came from (read from the YAML node marks), so
explain_rebuild and daemon errors point into cog.yaml like they point into build.envd.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from envd_jupyter.lang._environment import Environment
from envd_jupyter.lang._errors import CogConfigError, Location
from envd_jupyter.lang._functions import EnvdFunctions
from envd_jupyter.lang._untrusted import check_yaml_aliases

SOURCE_DIR = "/src"
_KNOWN_BUILD_KEYS = {"python_version", "system_packages", "python_requirements", "python_packages", "run",
                     "gpu", "cuda", "cudnn"}


def _lines(node: yaml.Node) -> dict[tuple[str, ...], int]:
    """Line (1-based) of every mapping key and sequence item, addressed by its key path."""
    out: dict[tuple[str, ...], int] = {}

    def walk(n: yaml.Node, prefix: tuple[str, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                out[prefix + (key.value,)] = key.start_mark.line + 1
                walk(value, prefix + (key.value,))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                out[prefix + (str(i),)] = item.start_mark.line + 1
                walk(item, prefix + (str(i),))

    walk(node, ())
    return out


def from_cog_yaml(path: str | Path, *, base_image: str | None = None, env: Environment | None = None) -> Environment:
    """Record a cog.yaml as envd calls. ``base_image`` defaults to ``python:<python_version>``.

    With ``env``, the calls are recorded into a copy of it; ``env`` itself is never changed.
    """
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.reason if isinstance(err, UnicodeDecodeError) else (err.strerror or str(err))
        raise CogConfigError(f"cannot read cog.yaml: {reason}", Location(str(path))) from None
    try:
        node = yaml.compose(text)
        if node is not None:
            check_yaml_aliases(node, path)  # before anything expands them
        data: dict[str, Any] = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise CogConfigError(f"invalid YAML: {getattr(err, 'problem', err)}",
                             Location(str(path), mark.line + 1 if mark else 0)) from None
    lines = _lines(node) if node is not None else {}

    def at(*keys: str) -> Location:
        return Location(str(path), lines.get(tuple(keys), 0))

    if not isinstance(data, dict):
        raise CogConfigError(f"must be a mapping with a build: key, got {type(data).__name__}", Location(str(path), 1))
    build = data.get("build") or {}
    if not isinstance(build, dict):
        raise CogConfigError("build: must be a mapping", at("build"))
    unknown = sorted(set(build) - _KNOWN_BUILD_KEYS)
    if unknown:
        raise CogConfigError(f"build.{unknown[0]}: not understood by this mapping", at("build", unknown[0]))
    if build.get("gpu") and base_image is None:
        raise CogConfigError("build.gpu: no CUDA base image here; pass base_image= with CUDA inside", at("build", "gpu"))

    version = build.get("python_version", "3.11")
    if not isinstance(version, (str, int, float)) or isinstance(version, bool):
        raise CogConfigError("build.python_version: must be a version such as \"3.11\"", at("build", "python_version"))
    version = str(version)
    run_steps = build.get("run") or []
    if not isinstance(run_steps, list):  # a bare string would otherwise run each character as a step
        raise CogConfigError("build.run: must be a list of commands", at("build", "run"))
    env = env.clone() if env is not None else Environment(name=path.parent.name, context=path.parent)
    fns = EnvdFunctions(env)
    fns.base(image=base_image or f"python:{version}", _at=at("build") if "build" in data else Location(str(path), 1))
    fns.install.python(version, _at=at("build", "python_version"))
    if build.get("system_packages"):
        fns.install.apt_packages(name=_strings(build, "system_packages", at), _at=at("build", "system_packages"))
    if build.get("python_requirements"):
        fns.install.python_packages(requirements=str(build["python_requirements"]),
                                    _at=at("build", "python_requirements"))
    if build.get("python_packages"):
        fns.install.python_packages(name=_strings(build, "python_packages", at), _at=at("build", "python_packages"))
    for i, step in enumerate(run_steps):
        command = step.get("command") if isinstance(step, dict) else step
        if not isinstance(command, str):
            raise CogConfigError("build.run: each item is a string or {command: ...}", at("build", "run", str(i)))
        if isinstance(step, dict) and step.get("mounts"):
            raise CogConfigError("build.run: mounts (secrets) are not mapped", at("build", "run", str(i)))
        fns.run([command], _at=at("build", "run", str(i)))
    fns.io.copy(".", SOURCE_DIR, _at=at("predict") if "predict" in data else Location(str(path), 1))
    env.config = replace(env.config, workdir=SOURCE_DIR).with_labels(
        **{"run.cog.config": json.dumps(data, sort_keys=True, default=str)})
    return env


def _strings(build: dict, key: str, at) -> list[str]:
    value = build[key]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise CogConfigError(f"build.{key}: must be a list of strings", at("build", key))
    return [str(v) for v in value]
