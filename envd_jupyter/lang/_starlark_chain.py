"""The chaining form inside Starlark: ``image("x").apt_packages([...]).run("...")`` with real dot syntax.

Why a source rewrite and not Starlark values with methods: go.starlark.net gives attributes only
to Go-backed values (its ``struct``/``module`` types live in starlarkstruct, which starlark-go does
not expose), and starlark-go converts whatever a Python callable returns into plain Starlark
data: no Python object, and no Starlark function either, crosses the boundary as something with
methods. A Starlark prelude of dicts holding bound lambdas would work, but spells ``s["run"](...)``.

So a chain state lives in Python and Starlark holds a handle, the dict ``{"envd_state": n}``
(an index into the loader's table of EnvdStates). The loader rewrites every method call
``receiver.name(args)`` whose name is not a method of Starlark's own types (string, list, dict,
bytes: those calls never reach us) into ``_envd_method(receiver, "name", "file:line", args)``.
Users write and read real dot syntax; every call records its own line; a misspelt method, or a
method called on something that is not a state, is a one-line error at that line. Any such call
would fail in plain Starlark anyway (there is no other value with methods), so nothing that
works in go.starlark.net changes meaning.
"""

from __future__ import annotations

import difflib
import json
import keyword
import re
import tokenize
import starlark_go

from envd_jupyter.lang import _chain as chain
from envd_jupyter.lang._tokens import matching_close, matching_open
from envd_jupyter.lang._chain import CHAIN_METHODS, EnvdState
from envd_jupyter.lang._environment import Environment, as_location, image_arg
from envd_jupyter.lang._errors import EnvdArgumentError, UnknownFunctionError

HANDLE_KEY = "envd_state"
METHOD_CALL = "_envd_method"
_STARLARK_TYPE_NAMES = {"str": "string"}  # Python type names that Starlark spells differently


def _builtin_methods() -> frozenset[str]:
    """Method names of Starlark's own types, asked of the interpreter (calls to them are left alone)."""
    probe = starlark_go.Starlark()
    return frozenset(name for value in ('""', "[]", "{}", 'b""') for name in probe.eval(f"dir({value})"))


BUILTIN_METHODS = _builtin_methods()


def at_literal(filename: str, line: int) -> str:
    """``"file:line"`` as a Starlark string literal (a JSON string is one), whatever the file name holds."""
    return json.dumps(f"{filename}:{line}")


def method_call_edits(tokens, dot: int, filename: str, starts: dict[int, int]) -> list[tuple[int, int, int, str]]:
    """Edits turning ``receiver.name(args)`` (``tokens[dot]`` is the dot) into an ``_envd_method`` call.

    Returns no edits when the dot does not start such a call or its receiver cannot be delimited.
    ``starts`` (closing paren index → first token index of the call, filled in here) keeps a chain of
    n calls linear: each receiver is found from the previous call instead of walking the chain again.
    """
    if dot + 2 >= len(tokens):
        return []
    name, paren = tokens[dot + 1], tokens[dot + 2]
    if name.type != tokenize.NAME or paren.string != "(" or name.string in BUILTIN_METHODS \
            or not tokens[dot].start[0] == name.start[0] == paren.start[0]:
        return []
    start = _receiver_start(tokens, dot - 1, starts)
    if start is None:
        return []
    close = matching_close(tokens, dot + 2, filename)
    starts[close] = start
    separator = "" if close == dot + 3 else ", "
    row, col = tokens[start].start
    call = f', "{name.string}", {at_literal(filename, name.start[0])}{separator}'
    return [(row, col, col, f"{METHOD_CALL}("), (tokens[dot].start[0], tokens[dot].start[1], paren.end[1], call)]


def _is_keyword(token) -> bool:
    return token.type == tokenize.NAME and keyword.iskeyword(token.string) \
        and token.string not in ("True", "False", "None")


def _receiver_start(tokens, j: int, starts: dict[int, int]) -> int | None:
    """Index of the first token of the primary expression that ends at ``tokens[j]`` (atom + trailers)."""
    while j >= 0:
        token = tokens[j]
        if j in starts:
            return starts[j]
        if token.type == tokenize.OP and token.string in ")]}":
            j = matching_open(tokens, j)
            if j is None:
                return None
            before = tokens[j - 1] if j else None
            is_trailer = token.string != "}" and before is not None and (
                (before.type in (tokenize.NAME, tokenize.STRING) and not _is_keyword(before))
                or (before.type == tokenize.OP and before.string in ")]"))
            if not is_trailer:
                return j
            j -= 1
        elif token.type in (tokenize.NAME, tokenize.STRING, tokenize.NUMBER) and not _is_keyword(token):
            if j >= 2 and tokens[j - 1].string == ".":
                j -= 2
            else:
                return j
        else:
            return None
    return None


class ChainHandles:
    """The Python side of one interpreter's chain states: ``image``, ``merge``, ``diff`` and methods."""

    def __init__(self, env: Environment):
        self._env = env  # the loader's environment: its name and build context start every chain
        self._as_given = env.clone()  # to tell whether the file also called envd functions
        self._states: list[EnvdState] = []

    def handle(self, state: EnvdState) -> dict[str, int]:
        self._states.append(state)
        return {HANDLE_KEY: len(self._states) - 1}

    def state_of(self, value):
        """The EnvdState a handle stands for; any other value is returned as it is (for the error)."""
        if isinstance(value, dict) and set(value) == {HANDLE_KEY} and isinstance(value[HANDLE_KEY], int) \
                and 0 <= value[HANDLE_KEY] < len(self._states):
            return self._states[value[HANDLE_KEY]]
        return value

    def image(self, ref: str = "", dev: bool = False, *, _at=None) -> dict[str, int]:
        at = as_location(_at)
        ref = image_arg("image", "ref", ref, at)
        return self.handle(chain.image(ref, dev=dev, name=self._env.name, context=self._env.context, _at=at))

    def merge(self, states, *, _at=None) -> dict[str, int]:
        at = as_location(_at)
        if not isinstance(states, (list, tuple)):
            raise EnvdArgumentError(f"merge: want a list of states, got {_starlark_type(states)}", at)
        return self.handle(chain.merge([self.state_of(s) for s in states], _at=at))

    def diff(self, lower, upper, *, _at=None) -> dict[str, int]:
        return self.handle(chain.diff(self.state_of(lower), self.state_of(upper), _at=as_location(_at)))

    def method(self, receiver, name: str, at: str, /, *args, **kwargs) -> dict[str, int]:
        """``receiver.name(*args, **kwargs)`` as the rewritten source calls it (``name=`` may be a keyword)."""
        location = as_location(at)
        state = self.state_of(receiver)
        if not isinstance(state, EnvdState):
            raise EnvdArgumentError(f"{_starlark_type(receiver)} has no .{name} field or method", location)
        if name not in CHAIN_METHODS:
            close = difflib.get_close_matches(name, CHAIN_METHODS, n=1)
            hint = f" (did you mean .{close[0]}?)" if close else f" (methods: {', '.join(CHAIN_METHODS)})"
            raise UnknownFunctionError(f"envd state has no method .{name}{hint}", location)
        args = tuple(self.state_of(a) for a in args)
        try:
            result = getattr(state, name)(*args, _at=location, **kwargs)
        except TypeError as err:
            raise EnvdArgumentError(f".{name}: {type_error_text(err, method=True)}", location) from None
        return self.handle(result)

    def result(self, value, where) -> Environment | None:
        """What ``build()`` returned: a state's environment, None (the recorded form), or an error."""
        if value is None:
            return None
        state = self.state_of(value)
        if not isinstance(state, EnvdState):
            raise EnvdArgumentError(f"build() must return a state from image(...) or nothing, "
                                    f"got {_starlark_type(value)}", where)
        if self.recorded():
            raise EnvdArgumentError("build() returned a chained state but also called envd functions: "
                                    "use one form (e.g. image(...).apt_packages(...) instead of install.*)", where)
        return state.environment

    def recorded(self) -> bool:
        """Whether the file called envd functions (recorded into the loader's environment)."""
        return self._env != self._as_given

    def globals(self) -> dict:
        return {"image": self.image, "merge": self.merge, "diff": self.diff}


def type_error_text(err: TypeError, *, method: bool = False) -> str:
    """Python's TypeError for a call, as the Starlark caller sees it: no function prefix, no hidden
    ``_at``, and for a method no ``self`` in the argument counts."""
    text = re.sub(r"^\S+\(\) ", "", str(err))
    text = re.sub(r" \(and \d+ keyword-only arguments?\)", "", text)
    if not method:
        return text
    text = re.sub(r"\d+(?= (?:to \d+ )?positional argument)|(?<=from )\d+|(?<=but )\d+(?= (?:was|were) given)",
                  lambda m: str(int(m.group()) - 1), text)
    # one fewer can change the number: "takes 0 positional arguments but 1 was given"
    text = re.sub(r"(?<!to )\b(\d+) positional arguments?\b",
                  lambda m: f"{m[1]} positional argument{'' if m[1] == '1' else 's'}", text)
    return re.sub(r"\b(\d+)( positional arguments?)? (?:was|were) given",
                  lambda m: f"{m[1]}{m[2] or ''} {'was' if m[1] == '1' else 'were'} given", text)


def _starlark_type(value) -> str:
    return _STARLARK_TYPE_NAMES.get(type(value).__name__, type(value).__name__)

