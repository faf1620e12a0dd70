"""Plugins registered by type name, each with a dataclass parameter model.

``@register("type")`` on a plugin class makes it available to configs. Parameters arrive as
camelCase YAML keys and are checked strictly against the class's ``Params`` dataclass:
unknown keys, wrong types and failed ``__post_init__`` checks become ``ParamError`` with the
field's path, which the config loader prefixes with where the plugin sits in the file.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Mapping

from ._framework.interfaces import Plugin
from ._framework.result import SchedulingError


class ParamError(SchedulingError, ValueError):
    """A parameter is wrong; ``path`` is relative to the plugin's ``parameters``."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


_REGISTRY: dict[str, type[Plugin]] = {}


def register(type_name: str):
    """Class decorator: make a plugin class available under ``type_name``."""

    def decorate(cls: type[Plugin]) -> type[Plugin]:
        existing = _REGISTRY.get(type_name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"plugin type '{type_name}' is already registered by {existing.__qualname__}")
        if not dataclasses.is_dataclass(cls.Params):
            raise TypeError(f"{cls.__qualname__}.Params must be a dataclass")
        cls.type_name = type_name
        _REGISTRY[type_name] = cls
        return cls

    return decorate


def plugin_types() -> dict[str, type[Plugin]]:
    """Every registered type name → plugin class (built-ins are registered on import)."""
    from . import _plugins  # noqa: F401  (registers the built-ins)

    return dict(sorted(_REGISTRY.items()))


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def parse_params(cls: type[Plugin], raw: Any) -> Any:
    """Build ``cls.Params`` from a YAML mapping (or None), strictly."""
    model = cls.Params
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ParamError("", f"expected a mapping of parameters, got {type(raw).__name__}")
    hints = typing.get_type_hints(model)
    fields = {camel(f.name): f for f in dataclasses.fields(model)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        field = fields.get(key)
        if field is None:
            allowed = ", ".join(fields) or "none"
            hint = f" (did you mean '{camel(_snake(key))}'?)" if camel(_snake(key)) in fields and key != camel(_snake(key)) else ""
            raise ParamError(str(key), f"unknown parameter{hint}; allowed: {allowed}")
        values[field.name] = _coerce(hints[field.name], value, key)
    try:
        return model(**values)
    except ParamError:
        raise
    except (TypeError, ValueError) as exc:
        raise ParamError("", str(exc)) from None


def params_to_dict(params: Any) -> dict[str, Any]:
    """The effective parameters (defaults included) as camelCase plain data."""
    return {camel(f.name): _plain(getattr(params, f.name)) for f in dataclasses.fields(params)}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(option, value, path)
            except ParamError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is typing.Literal:
        if value not in args:
            raise ParamError(path, f"expected one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ParamError(path, f"expected a list, got {type(value).__name__}")
        return tuple(_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or origin is typing.get_origin(Mapping[str, int]):
        if not isinstance(value, Mapping):
            raise ParamError(path, f"expected a mapping, got {type(value).__name__}")
        key_type, value_type = args
        return {_coerce(key_type, k, path): _coerce(value_type, v, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamError(path, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(path, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(path, f"expected a number, got {value!r}")
        if not is_finite(value):
            raise ParamError(path, f"must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamError(path, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported parameter type {_type_name(tp)} at {path}")


def is_finite(number: int | float) -> bool:
    """False for inf, nan and integers too large for a float (YAML's ``.inf``, ``.nan``, ``1e999``,
    a 400-digit integer): any of them would make a score or a total non-finite."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def params_schema(cls: type[Plugin]) -> dict[str, Any]:
    """JSON Schema of one plugin type's ``parameters`` mapping."""
    model = cls.Params
    hints = typing.get_type_hints(model)
    properties: dict[str, Any] = {}
    for field in dataclasses.fields(model):
        schema = _schema(hints[field.name])
        default = field.default if field.default is not dataclasses.MISSING else (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else dataclasses.MISSING
        )
        if default is not dataclasses.MISSING:
            schema["default"] = _plain(default)
        properties[camel(field.name)] = schema
    required = [
        camel(f.name) for f in dataclasses.fields(model)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _schema(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [{"type": "null"} if a is type(None) else _schema(a) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is tuple:
        return {"type": "array", "items": _schema(args[0])}
    if origin in (dict, Mapping) or origin is typing.get_origin(Mapping[str, int]):
        return {"type": "object", "additionalProperties": _schema(args[1])}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return {"type": simple[tp]}
