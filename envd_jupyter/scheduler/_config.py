"""Strict YAML config in the ``EndpointPickerConfig`` shape, with path-precise errors.

    plugins: [{type, name, parameters}]
    schedulingProfiles: [{name, plugins: [{pluginRef, weight}], fallbackProfile}]

Defaults are filled in (plugin name = type, scorer weight 1, a max-score picker per profile,
a single-profile handler when there is one profile) and the result prints as YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Mapping

import yaml

from ._framework.cycle import Profile
from ._framework.result import SchedulingError
from ._framework.interfaces import PickObserver, Plugin, PluginHandle, ProfileHandler
from ._registry import ParamError, is_finite, params_schema, params_to_dict, parse_params, plugin_types

API_VERSION = "envd-jupyter.scheduler/v1alpha1"
KIND = "EndpointPickerConfig"
DEFAULT_PICKER = "max-score-picker"
DEFAULT_HANDLER = "single-profile-handler"

DEFAULT_CONFIG_YAML = """\
plugins:
- type: healthy-filter
- type: platform-filter
- type: caps-filter
- type: label-filter
- type: saturation-filter
- type: cache-affinity-scorer
- type: in-flight-scorer
- type: free-disk-scorer
- type: cpu-load-scorer
- type: failure-rate-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: healthy-filter
  - pluginRef: platform-filter
  - pluginRef: caps-filter
  - pluginRef: label-filter
  - pluginRef: saturation-filter
  - {pluginRef: cache-affinity-scorer, weight: 3}
  - {pluginRef: in-flight-scorer, weight: 2}
  - pluginRef: free-disk-scorer
  - pluginRef: cpu-load-scorer
  - pluginRef: failure-rate-scorer
"""


class ConfigError(SchedulingError, ValueError):
    """The config is wrong at ``path`` (e.g. ``schedulingProfiles[1].plugins[0].pluginRef``)."""

    def __init__(self, path: str, message: str, *, file: str | None = None) -> None:
        self.path = path
        self.message = message
        self.file = file
        where = ": ".join(part for part in (file, path) if part)
        super().__init__(f"{where}: {message}" if where else message)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a strict config must not lose the first silently."""

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # SafeLoader's own construct_mapping reports unhashable keys
            if key in seen:
                mark = key_node.start_mark
                raise ConfigError(f"line {mark.line + 1}, column {mark.column + 1}", f"duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep)


@dataclass
class PluginSpec:
    type: str
    name: str
    parameters: Any


@dataclass
class ProfilePlugin:
    plugin_ref: str
    weight: float | None = None


@dataclass
class ProfileSpec:
    name: str
    plugins: list[ProfilePlugin]
    fallback_profile: str | None = None


@dataclass
class SchedulerConfig:
    """A validated config with defaults filled in."""

    plugins: list[PluginSpec]
    profiles: list[ProfileSpec]
    types: dict[str, type[Plugin]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        profiles = []
        for profile in self.profiles:
            entry: dict[str, Any] = {"name": profile.name, "plugins": [
                {"pluginRef": p.plugin_ref, **({"weight": p.weight} if p.weight is not None else {})} for p in profile.plugins
            ]}
            if profile.fallback_profile:
                entry["fallbackProfile"] = profile.fallback_profile
            profiles.append(entry)
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "plugins": [{"type": p.type, "name": p.name, "parameters": params_to_dict(p.parameters)} for p in self.plugins],
            "schedulingProfiles": profiles,
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _strict_keys(node: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> Mapping[str, Any]:
    if not isinstance(node, Mapping):
        raise ConfigError(path, f"expected a mapping with keys {', '.join(allowed)}; got {type(node).__name__}")
    for key in node:
        if key not in allowed:
            raise ConfigError(f"{path}.{key}" if path else str(key), f"unknown field; expected one of {', '.join(allowed)}")
    for key in required:
        if key not in node:
            raise ConfigError(f"{path}.{key}" if path else key, "required field is missing")
    return node


def _list(node: Any, path: str) -> list[Any]:
    if not isinstance(node, list):
        raise ConfigError(path, f"expected a list, got {type(node).__name__}")
    return node


def _name(node: Any, path: str) -> str:
    if not isinstance(node, str) or not node:
        raise ConfigError(path, f"expected a non-empty string, got {node!r}")
    return node


def load_config(path: str | Path) -> SchedulerConfig:
    """Parse a config file; a ConfigError names the file as well as the path inside it."""
    try:
        return parse_config(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"byte {exc.start}", f"not UTF-8 text: {exc.reason}", file=str(path)) from None
    except ConfigError as exc:
        raise ConfigError(exc.path, exc.message, file=str(path)) from None


def default_config() -> SchedulerConfig:
    return parse_config(DEFAULT_CONFIG_YAML)


def parse_config(source: str | Mapping[str, Any] | None) -> SchedulerConfig:
    """Validate a YAML text or mapping; ``None``/empty gives the default config."""
    if isinstance(source, str):
        try:
            source = yaml.load(source, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
            raise ConfigError(where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not source:
        source = yaml.safe_load(DEFAULT_CONFIG_YAML)
    root = _strict_keys(source, "", ("apiVersion", "kind", "plugins", "schedulingProfiles"), ("plugins",))
    if root.get("kind", KIND) != KIND:
        raise ConfigError("kind", f"expected '{KIND}', got {root['kind']!r}")
    if root.get("apiVersion", API_VERSION) != API_VERSION:
        raise ConfigError("apiVersion", f"expected '{API_VERSION}', got {root['apiVersion']!r}")
    types = plugin_types()
    plugins, where = _parse_plugins(_list(root["plugins"], "plugins"), types)
    # Required, but checked after the plugins so a config with a bad plugin reports that plugin.
    if "schedulingProfiles" not in root:
        raise ConfigError("schedulingProfiles", "required field is missing")
    profiles = _parse_profiles(_list(root["schedulingProfiles"], "schedulingProfiles"), plugins, where, types)
    _ensure_handler(plugins, profiles, where, types)
    return SchedulerConfig(plugins, profiles, types)


def _parse_plugins(items: list[Any], types: dict[str, type[Plugin]]) -> tuple[list[PluginSpec], dict[str, int]]:
    plugins: list[PluginSpec] = []
    where: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"plugins[{i}]"
        node = _strict_keys(item, path, ("type", "name", "parameters"), ("type",))
        type_name = _name(node["type"], f"{path}.type")
        cls = types.get(type_name)
        if cls is None:
            raise ConfigError(f"{path}.type", f"unknown plugin type '{type_name}'; known: {', '.join(types)}")
        name = _name(node.get("name", type_name), f"{path}.name")
        if name in where:
            raise ConfigError(f"{path}.name", f"duplicate plugin name '{name}' (first defined at plugins[{where[name]}])")
        try:
            params = parse_params(cls, node.get("parameters"))
        except ParamError as exc:
            raise ConfigError(f"{path}.parameters" + (f".{exc.path}" if exc.path else ""), exc.message) from None
        where[name] = i
        plugins.append(PluginSpec(type_name, name, params))
    return plugins, where


def _parse_profiles(items: list[Any], plugins: list[PluginSpec], where: dict[str, int], types) -> list[ProfileSpec]:
    if not items:
        raise ConfigError("schedulingProfiles", "at least one profile is required")
    kinds = {p.name: types[p.type].kind for p in plugins}
    usable = ", ".join(name for name, kind in kinds.items() if kind != "handler") or "none"
    profiles: list[ProfileSpec] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"schedulingProfiles[{i}]"
        node = _strict_keys(item, path, ("name", "plugins", "fallbackProfile"), ("name", "plugins"))
        name = _name(node["name"], f"{path}.name")
        if name in seen:
            raise ConfigError(f"{path}.name", f"duplicate profile name '{name}' (first at schedulingProfiles[{seen[name]}])")
        seen[name] = i
        refs: list[ProfilePlugin] = []
        picker_at: int | None = None
        weight_sum = 0.0
        for j, ref_item in enumerate(_list(node["plugins"], f"{path}.plugins")):
            ref_path = f"{path}.plugins[{j}]"
            ref_node = _strict_keys(ref_item, ref_path, ("pluginRef", "weight"), ("pluginRef",))
            ref = _name(ref_node["pluginRef"], f"{ref_path}.pluginRef")
            kind = kinds.get(ref)
            if kind is None:
                raise ConfigError(f"{ref_path}.pluginRef", f"no plugin named '{ref}'; defined: {usable}")
            if kind == "handler":
                raise ConfigError(f"{ref_path}.pluginRef", f"'{ref}' is a profile handler; handlers are chosen at top level, not inside a profile")
            if any(r.plugin_ref == ref for r in refs):
                raise ConfigError(f"{ref_path}.pluginRef", f"'{ref}' is already in this profile")
            if kind == "picker":
                if picker_at is not None:
                    raise ConfigError(f"{ref_path}.pluginRef", f"a profile has one picker; '{refs[picker_at].plugin_ref}' is already at {path}.plugins[{picker_at}]")
                picker_at = j
            weight = ref_node.get("weight")
            if weight is not None and kind != "scorer":
                raise ConfigError(f"{ref_path}.weight", f"weight applies to scorers only; '{ref}' is a {kind}")
            if kind == "scorer":
                if weight is None:
                    weight = 1.0
                weight = _scorer_weight(weight, f"{ref_path}.weight")
                weight_sum += weight
                if not is_finite(weight_sum):  # scores are in [0, 1], so totals stay below this sum
                    raise ConfigError(f"{ref_path}.weight", f"the profile's weights add up past the largest float; got {weight!r}")
            refs.append(ProfilePlugin(ref, weight))
        if picker_at is None:
            _ensure_default_picker(plugins, where, kinds, types)
            refs.append(ProfilePlugin(DEFAULT_PICKER))
        profiles.append(ProfileSpec(name, refs, node.get("fallbackProfile")))
    for i, profile in enumerate(profiles):
        fallback = profile.fallback_profile
        if fallback is None:
            continue
        if fallback not in seen:
            raise ConfigError(f"schedulingProfiles[{i}].fallbackProfile", f"no profile named {fallback!r}; defined: {', '.join(seen)}")
        if fallback == profile.name:
            raise ConfigError(f"schedulingProfiles[{i}].fallbackProfile", "a profile cannot be its own fallback")
    return profiles


def _scorer_weight(weight: Any, path: str) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ConfigError(path, f"expected a number >= 0, got {weight!r}")
    if not is_finite(weight):
        raise ConfigError(path, f"must be a finite number, got {weight!r}")
    if not weight >= 0:
        raise ConfigError(path, f"expected a number >= 0, got {weight!r}")
    return float(weight)


def _ensure_default_picker(plugins: list[PluginSpec], where: dict[str, int], kinds: dict[str, str], types) -> None:
    existing = kinds.get(DEFAULT_PICKER)
    if existing == "picker":
        return
    if existing is not None:
        raise ConfigError(f"plugins[{where[DEFAULT_PICKER]}].name", f"'{DEFAULT_PICKER}' is reserved for the default picker but names a {existing}")
    cls = types[DEFAULT_PICKER]
    where[DEFAULT_PICKER] = len(plugins)
    kinds[DEFAULT_PICKER] = "picker"
    plugins.append(PluginSpec(DEFAULT_PICKER, DEFAULT_PICKER, parse_params(cls, None)))


def _ensure_handler(plugins: list[PluginSpec], profiles: list[ProfileSpec], where: dict[str, int], types) -> None:
    handlers = [p for p in plugins if types[p.type].kind == "handler"]
    if len(handlers) > 1:
        raise ConfigError(f"plugins[{where[handlers[1].name]}].type", f"a second profile handler; '{handlers[0].name}' is already defined")
    names = [p.name for p in profiles]
    if not handlers:
        if len(profiles) > 1:
            choices = ", ".join(t for t, c in types.items() if c.kind == "handler" and t != DEFAULT_HANDLER)
            raise ConfigError("plugins", f"{len(profiles)} profiles need a profile handler plugin (one of {choices}); none defined")
        spec = PluginSpec(DEFAULT_HANDLER, DEFAULT_HANDLER, parse_params(types[DEFAULT_HANDLER], None))
        where[spec.name] = len(plugins)
        plugins.append(spec)
        handlers = [spec]
    handler = handlers[0]
    cls = types[handler.type]
    try:
        cls.check_profiles(handler.parameters, names)  # type: ignore[attr-defined]
    except ParamError as exc:
        base = f"plugins[{where[handler.name]}]"
        raise ConfigError(f"{base}.parameters.{exc.path}" if exc.path else base, exc.message) from None


@dataclass
class Plan:
    """A config turned into live plugin instances; swapped whole on reload."""

    config: SchedulerConfig
    handler: ProfileHandler
    profiles: dict[str, Profile]
    observers: dict[str, list[PickObserver]]


def build_plan(config: SchedulerConfig, handle: PluginHandle) -> Plan:
    types = config.types or plugin_types()
    instances = {p.name: types[p.type](p.name, p.parameters, handle) for p in config.plugins}
    handler = next(i for i in instances.values() if i.kind == "handler")
    profiles: dict[str, Profile] = {}
    observers: dict[str, list[PickObserver]] = {}
    for spec in config.profiles:
        members = [(instances[r.plugin_ref], r.weight) for r in spec.plugins]
        filters = [p for p, _ in members if p.kind == "filter"]
        scorers = [(p, w) for p, w in members if p.kind == "scorer"]
        picker = next(p for p, _ in members if p.kind == "picker")
        profiles[spec.name] = Profile(spec.name, filters, scorers, picker, spec.fallback_profile)  # type: ignore[arg-type]
        observers[spec.name] = [p for p, _ in members if isinstance(p, PickObserver)]
    return Plan(config, handler, profiles, observers)  # type: ignore[arg-type]


def config_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the config file, one branch per registered plugin type."""
    plugin_branches = [
        {
            "type": "object",
            "properties": {"type": {"const": type_name}, "name": {"type": "string", "minLength": 1}, "parameters": params_schema(cls)},
            "required": ["type"],
            "additionalProperties": False,
        }
        for type_name, cls in plugin_types().items()
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": KIND,
        "type": "object",
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": KIND},
            "plugins": {"type": "array", "items": {"oneOf": plugin_branches}},
            "schedulingProfiles": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "fallbackProfile": {"type": "string"},
                        "plugins": {"type": "array", "items": {
                            "type": "object",
                            "properties": {"pluginRef": {"type": "string"}, "weight": {"type": "number", "minimum": 0}},
                            "required": ["pluginRef"],
                            "additionalProperties": False,
                        }},
                    },
                    "required": ["name", "plugins"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["plugins", "schedulingProfiles"],
        "additionalProperties": False,
    }
