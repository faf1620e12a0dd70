"""Run build.envd files and Starlark cell bodies with go.starlark.net, envd's own interpreter.

Why ``starlark-go`` (Python bindings to go.starlark.net) and not ``starlark-pyo3`` (Rust):
envd embeds go.starlark.net, so the same parser, resolver, builtins and error texts mean a file
that envd accepts is accepted here, with envd's resolver options (no ``set``, no top-level
``for``/``if``, no global reassignment) except recursion, which is refused (see ``_starlark_worker``).
The interpreter runs in a worker process (``_sandbox``); the functions below run here. Both bindings call Python functions
passed as globals; neither lets Starlark call methods on Python objects. starlark-go also lacks
``struct`` modules and a ``load()`` hook, which this module supplies at the token level:

* ``install.apt_packages`` becomes the global ``install_apt_packages`` (same length, so columns
  stay put), and errors name the dotted form again;
* each call of an envd function gets a trailing ``_at="file:line"`` argument, because Python
  callables cannot see the Starlark call stack and every op must record the user's line;
* top-level ``load("lib.envd", "f", g="h")`` statements are blanked (newlines kept) and the
  module is executed first in the same interpreter. Deviation from Starlark: a loaded module's
  top-level names are visible to the loader too (a clash is a "cannot reassign global" error);
* the chaining form's method calls ``image("x").run("y")`` become ``_envd_method(...)`` calls
  (see ``starlark_chain`` for why); ``build()`` may return the chain's final state.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import starlark_go

from envd_jupyter.lang._chain import EnvdState, from_environment, rooted_at
from envd_jupyter.lang._environment import Environment, as_location
from envd_jupyter.lang._errors import EnvdArgumentError, EnvdError, EnvdLoadError, EnvdSyntaxError, Location
from envd_jupyter.lang._include import Include, include_files, is_include, parse_include
from envd_jupyter.lang._functions import NAMESPACES, EnvdFunctions, unknown_function
from envd_jupyter.lang._settings import Data
from envd_jupyter.lang._sandbox import DEFAULT_LIMITS, EvalLimitError, EvalLimits, Interpreter, interpreter
from envd_jupyter.lang._tokens import check_nesting, is_open, matching_close
from envd_jupyter.lang._untrusted import resolve_inside
from envd_jupyter.lang._starlark_chain import (METHOD_CALL, ChainHandles, at_literal, method_call_edits,
                                              type_error_text)

_FRAME = re.compile(r"^\s+(?P<file>.+):(?P<line>\d+):\d+: in ")


def flat_name(dotted: str) -> str:
    return dotted.replace(".", "_", 1)


@dataclass
class _Load:
    module: str
    symbols: dict[str, str]  # local name -> name in module
    line: int


@dataclass
class _Rewritten:
    source: str
    loads: list[_Load] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    defs: dict[str, int] = field(default_factory=dict)  # top-level ``def name`` → line, for errors about build()


def rewrite(source: str, filename: str, function_names: set[str]) -> _Rewritten:
    """Flatten namespaces, tag envd calls with ``_at`` and lift top-level ``load`` statements."""
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
                  if t.type not in (tokenize.COMMENT, tokenize.NL)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return _Rewritten(source)  # let Starlark's parser report the error with its own position
    check_nesting(tokens, filename)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, int, str]] = []  # (row, col_start, col_end, text)
    call_starts: dict[int, int] = {}
    loads: list[_Load] = []
    includes: list[Include] = []
    aliases = {tok.string for k, tok in enumerate(tokens) if is_include(tokens, k)}
    defs: dict[str, int] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if is_include(tokens, i):
            close = matching_close(tokens, i + 3, filename)
            includes.append(parse_include(tok.string, tokens[i + 4:close], filename, tok.start[0]))
            edits.extend(_blank(tok.start, tokens[close].end, lines))
            i = close + 1
            continue
        if tok.type == tokenize.NAME and tok.string in aliases and i + 2 < len(tokens) \
                and tokens[i + 1].string == "." and tokens[i + 2].type == tokenize.NAME \
                and tokens[i + 1].start[0] == tok.start[0] and not (i and tokens[i - 1].string == "."):
            edits.append((tok.start[0], tok.start[1], tokens[i + 1].end[1], ""))  # lib.member -> member
            i += 2
            continue
        prev = tokens[i - 1] if i else None
        after_dot = prev is not None and prev.string == "."
        if tok.type == tokenize.NAME and tok.string == "load" and tok.start[1] == 0 and is_open(tokens, i + 1):
            close = matching_close(tokens, i + 1, filename)
            loads.append(_parse_load(tokens[i + 2:close], filename, tok.start[0]))
            edits.extend(_blank(tokens[i].start, tokens[close].end, lines))
            i = close + 1
            continue
        if tok.string == "def" and tok.start[1] == 0 and i + 1 < len(tokens) and tokens[i + 1].type == tokenize.NAME:
            defs.setdefault(tokens[i + 1].string, tok.start[0])
        if tok.type == tokenize.OP and tok.string == "." and not _is_namespace(tokens, i - 1):
            edits.extend(method_call_edits(tokens, i, filename, call_starts))
        name, call_at = None, i + 1
        if tok.type == tokenize.NAME and not after_dot:
            if tok.string in NAMESPACES and i + 2 < len(tokens) and tokens[i + 1].string == "." \
                    and tokens[i + 2].type == tokenize.NAME:
                dot = tokens[i + 1]
                edits.append((dot.start[0], dot.start[1], dot.end[1], "_"))
                name, call_at = f"{tok.string}.{tokens[i + 2].string}", i + 3
                if name == "data.path" and call_at + 1 < len(tokens) and tokens[call_at].string == "." \
                        and tokens[call_at + 1].type == tokenize.NAME:  # data.path.huggingface: a value
                    dot = tokens[call_at]
                    edits.append((dot.start[0], dot.start[1], dot.end[1], "_"))
            elif tok.string in function_names:
                name = tok.string
        if name and is_open(tokens, call_at):
            close = matching_close(tokens, call_at, filename)
            empty = close == call_at + 1
            trailing_comma = tokens[close - 1].string == ","
            sep = "" if empty or trailing_comma else ", "
            row, col = tokens[close].start
            edits.append((row, col, col, f"{sep}_at={at_literal(filename, tok.start[0])}"))
        i += 1
    return _Rewritten(_apply(lines, edits), loads, includes, defs)


def _is_namespace(tokens, j: int) -> bool:
    """``tokens[j]`` is an envd namespace name (``install`` in ``install.apt_packages``), not an attribute."""
    return j >= 0 and tokens[j].type == tokenize.NAME and tokens[j].string in NAMESPACES \
        and not (j and tokens[j - 1].string == ".")


def _parse_load(arg_tokens, filename: str, line: int) -> _Load:
    at = Location(filename, line)
    args = [t for t in arg_tokens if t.string != ","]
    if not args or args[0].type != tokenize.STRING:
        raise EnvdLoadError("load: first argument must be a module path string", at)
    module, symbols, k = ast.literal_eval(args[0].string), {}, 1
    while k < len(args):
        if args[k].type == tokenize.STRING:
            sym = ast.literal_eval(args[k].string)
            symbols[sym] = sym
            k += 1
        elif args[k].type == tokenize.NAME and k + 2 < len(args) and args[k + 1].string == "=":
            symbols[args[k].string] = ast.literal_eval(args[k + 2].string)
            k += 3
        else:
            raise EnvdLoadError(f"load: unexpected {args[k].string!r}", at)
    if not symbols:
        raise EnvdLoadError("load: name at least one symbol to import", at)
    return _Load(module, symbols, line)


def _blank(start, end, lines):
    """Edits replacing the span with spaces, keeping line breaks so line numbers do not move."""
    (r0, c0), (r1, c1) = start, end
    for row in range(r0, r1 + 1):
        a = c0 if row == r0 else 0
        b = c1 if row == r1 else len(lines[row - 1].rstrip("\r\n"))
        yield (row, a, b, " " * (b - a))


def _apply(lines: list[str], edits) -> str:
    """The lines with every (row, start, end, text) edit applied; each line is rebuilt once (linear)."""
    out = list(lines)
    by_row: dict[int, list] = {}
    for edit in edits:
        by_row.setdefault(edit[0], []).append(edit)
    for row, row_edits in by_row.items():
        line, pieces, at = out[row - 1], [], 0
        for _, a, b, text in sorted(row_edits, key=lambda e: (e[1], e[2])):
            pieces += [line[at:a], text]
            at = b
        out[row - 1] = "".join(pieces) + line[at:]
    return "".join(out)


class StarlarkLoader:
    """One interpreter per environment; ``exec_file``/``exec_source`` record into ``self.env``.

    ``self.env`` is a copy of ``env``: running a cell twice on one Environment must not record its calls twice.
    ``start`` (an llb.State or chain state) replaces base(), and is the chain state ``start`` in the code.
    """

    def __init__(self, env: Environment | None = None, *, start=None, start_at: Location | None = None,
                 limits: EvalLimits | None = None):
        env = env if env is not None else Environment()
        self.functions = EnvdFunctions(env.clone() if start is None else rooted_at(env, start, start_at))
        self.env = self.functions.env
        self._chain = ChainHandles(self.env)
        self._table = {**self.functions.table(), **self._chain.globals(), "include": _include_elsewhere,
                       "breakpoint": self.functions.breakpoint}  # ours, not envd's: a mark for steppers
        self._flat_to_dotted = {flat_name(k): k for k in self._table}
        self._pending: EnvdError | None = None
        self._loaded: set[Path] = set()
        self._defs: dict[str, Location] = {}  # top-level functions of the files run, where they are defined
        self._loading: list[Path] = []
        self._callables = {flat_name(k): self._wrap(k, f) for k, f in self._table.items()}
        self._callables[METHOD_CALL] = self._guard(self._chain.method)
        self._values = {f"data_path_{name}": path for name, path in Data.PATHS.items()}  # plain globals
        if start is not None:  # the chain continues ``start`` itself, as a Python cell's ``start`` would
            chained = start if isinstance(start, EnvdState) else from_environment(self.env)
            self._values["start"] = self._chain.handle(chained)
        self.limits = limits
        self._starlark: Interpreter | None = None  # while exec_file / exec_source run
        self._calls = 0

    def _wrap(self, dotted: str, fn):
        def call(*args, _at=None, **kwargs):
            try:
                self._count_call(_at)
                return fn(*args, _at=_at or Location("<starlark>"), **kwargs)
            except EnvdError as err:
                self._pending = err
                raise
            except TypeError as err:
                text = type_error_text(err, method=inspect.ismethod(fn))  # no ``self`` in the counts
                self._pending = EnvdArgumentError(f"{dotted}: {text}", Location(*_split_at(_at)))
                raise self._pending from err
        return call

    def _guard(self, fn):
        """Keep an EnvdError raised under Starlark, which reaches us only as an EvalError's text."""
        def call(receiver, name, at, /, *args, **kwargs):
            try:
                self._count_call(at)
                return fn(receiver, name, at, *args, **kwargs)
            except EnvdError as err:
                self._pending = err
                raise
        return call

    def _count_call(self, at) -> None:
        """Calls into Python are the one step Starlark makes here that the CPU limit does not see."""
        self._calls += 1
        limit = (self.limits or DEFAULT_LIMITS).calls
        if self._calls > limit:
            raise EvalLimitError(f"stopped after {limit} calls of envd functions in one evaluation "
                                 "(the limit; a loop around them?)", Location(*_split_at(at)))

    def exec_file(self, path: str | Path, function: str = "build") -> Environment:
        """Run the file, then ``function()``, which envd requires (``envd build --from file:function``)."""
        path = Path(path).resolve()
        if not isinstance(function, str) or not function.isidentifier():
            raise EnvdArgumentError(f"load_file: function must be a function name, got {function!r}")
        with interpreter(self._callables, self._values, self.limits) as self._starlark:
            self._exec_module(path, None)
            if function not in self._starlark.globals():
                raise EnvdArgumentError(f"envd file has no {function} function: envd runs {function}()"
                                        f"{self._misspelt(function)}", Location(str(path)))
            return self._call(function, str(path))

    def exec_source(self, source: str, name: str = "<cell>", base_dir: Path | None = None) -> Environment:
        """Run a cell body: ``build()`` when it defines one, else its top-level calls (there must be some)."""
        with interpreter(self._callables, self._values, self.limits) as self._starlark:
            self._exec_text(source, name, base_dir or self.env.context)
            if "build" in self._starlark.globals():
                return self._call("build", name)
            if not self._chain.recorded():
                raise EnvdArgumentError("the cell records nothing: call envd functions at its top level or define "
                                        f"build(){self._misspelt('build')}", Location(name))
            return self.env

    def _misspelt(self, function: str) -> str:
        close = difflib.get_close_matches(function, [n for n in self._defs if n != function], n=1, cutoff=0.6)
        return f" (did you mean {close[0]}, defined at {self._defs[close[0]]}?)" if close else ""

    def _call(self, function: str, filename: str) -> Environment:
        """Call ``function()``: the environment it recorded, or the one of the chain state it returned."""
        at = self._defs.get(function, Location(filename))
        if self._starlark.eval(f"type({function})", filename=filename) != "function":
            raise EnvdArgumentError(f"{function} is not a function", at)
        value = self._run(lambda: self._starlark.eval(f"{function}()", filename=filename), filename)
        return self._chain.result(value, at) or self.env

    def _exec_module(self, path: Path, at: Location | None) -> None:
        if path in self._loading:
            raise EnvdLoadError(f"load cycle: {' -> '.join(p.name for p in self._loading + [path])}", at)
        if path in self._loaded:
            return
        if not path.is_file():
            raise EnvdLoadError(f"cannot load {path}: {'a directory' if path.is_dir() else 'no such file'}", at)
        self._check_size(path.stat().st_size, str(path))
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:  # Starlark source is UTF-8, like go.starlark.net expects
            line = path.read_bytes()[:err.start].count(b"\n") + 1
            raise EnvdLoadError(f"not UTF-8 text: {err.reason} at byte {err.start}", Location(str(path), line)) from None
        self._loading.append(path)
        try:
            self._exec_text(text, str(path), path.parent)
        finally:
            self._loading.pop()
        self._loaded.add(path)

    def _check_size(self, size: int, filename: str) -> None:
        """Refuse a source before tokenizing it: the rewrite runs here, outside the worker's budget."""
        limit = (self.limits or DEFAULT_LIMITS).source_bytes
        if size > limit:
            raise EvalLimitError(f"{size} bytes, more than the limit for one build file ({limit} bytes)",
                                 Location(filename))

    def _exec_text(self, source: str, filename: str, base_dir: Path) -> None:
        self._check_size(len(source.encode("utf-8", "surrogatepass")), filename)
        if "\x00" in source:
            line = source.count("\n", 0, source.index("\x00")) + 1
            raise EnvdSyntaxError("NUL character in the source (is it a text file?)", Location(filename, line))
        names = {k for k in self._table if "." not in k}
        rewritten = rewrite(source, filename, names)
        self._defs.update((name, Location(filename, line)) for name, line in rewritten.defs.items())
        for load in rewritten.loads:
            at = Location(filename, load.line)
            if load.module.startswith(("@", "git@", "http://", "https://")):
                raise EnvdLoadError(f"load: only local modules are supported, not {load.module}", at)
            self._exec_module(resolve_inside(base_dir, load.module, [base_dir, self.env.context], "load:",
                                             at, EnvdLoadError), at)
            have = set(self._starlark.globals())
            for local, remote in load.symbols.items():
                if remote not in have:
                    raise EnvdLoadError(f"load: {load.module} has no symbol {remote}", at)
                if local != remote:
                    self._run(lambda: self._starlark.exec(f"{local} = {remote}\n", filename=filename), filename)
        for include in rewritten.includes:
            at = Location(filename, include.line)
            for path in include_files(include, base_dir, at):
                self._exec_module(path, at)
        self._run(lambda: self._starlark.exec(rewritten.source, filename=filename), filename, source)

    def _run(self, action, filename: str, source: str = ""):
        self._pending = None
        try:
            return action()
        except starlark_go.SyntaxError as err:
            raise EnvdSyntaxError(self._dotted(err.msg), Location(err.filename or filename, err.line)) from None
        except starlark_go.ResolveError as err:  # every undefined name at once, each at its line
            errors = [self._resolve_error(item, Location(filename, item.line), source) for item in err.errors]
            raise EnvdError.first_of(errors) from None
        except starlark_go.EvalError as err:
            if self._pending is not None:
                raise self._pending from None
            raise EnvdError(self._dotted(_eval_message(err)), _eval_location(err, filename)) from None
        except starlark_go.StarlarkError as err:
            raise EnvdError(self._dotted(str(err)), Location(filename)) from None

    def _resolve_error(self, item, at: Location, source: str) -> EnvdError:
        """One resolver complaint as envd would say it: an undefined envd name is an unknown (or v0,
        or mistyped) function, whatever Starlark's own "did you mean" guessed from the flat names."""
        match = re.fullmatch(r"undefined: (\w+)( \(did you mean \w+\?\))?", item.msg)
        if match:
            name = self._flat_to_dotted.get(match.group(1)) or _dotted_guess(match.group(1))
            lines = source.splitlines()
            text = lines[at.line - 1] if source and at.line and at.line <= len(lines) else ""
            is_call = re.match(r"\s*[\w.]+\s*\(", text[max(item.column - 1, 0):]) is not None
            if is_call or "." in name:
                return unknown_function(name, list(self._table), at)
            return EnvdSyntaxError(self._dotted(item.msg), at)
        return EnvdSyntaxError(self._dotted(item.msg), at)

    def _dotted(self, text: str) -> str:
        return re.sub(r"\b(" + "|".join(NAMESPACES) + r")_(\w+)", r"\1.\2", text)


def _include_elsewhere(*args, _at=None, **kwargs):
    """``include`` reached the interpreter: it was not a top-level ``name = include(...)``, the one form lifted."""
    raise EnvdLoadError('include: assign it at the top level of the file: name = include(git="...")', as_location(_at))


def _dotted_guess(flat: str) -> str:
    ns, sep, rest = flat.partition("_")
    return f"{ns}.{rest}" if sep and ns in NAMESPACES else flat


def _split_at(at) -> tuple[str, int]:
    if isinstance(at, Location):
        return at.file, at.line
    file, _, line = str(at or "<starlark>").rpartition(":")
    return (file, int(line)) if line.isdigit() else (str(at), 0)


def _eval_message(err) -> str:
    last = (err.backtrace or "").strip().splitlines()[-1:] or [err.error]
    return re.sub(r"^Error( in \S+)?: ", "", last[0])


def _eval_location(err, filename: str) -> Location:
    frames = [m for m in map(_FRAME.match, (err.backtrace or "").splitlines()) if m]
    if len(frames) > 1 and _eval_message(err).endswith(" called recursively"):
        frames.pop()  # the refused frame was never entered: name the call that recursed
    if frames:
        return Location(frames[-1]["file"], int(frames[-1]["line"]))
    return Location(err.filename or filename, err.line or 0)


def load_file(path: str | Path, *, env: Environment | None = None, function: str = "build",
              limits: EvalLimits | None = None) -> Environment:
    """Execute a build.envd (its top level, then ``function()``, which must exist, as envd requires)
    and return what it recorded. ``function`` is envd's ``--from file:function``.

    With ``env``, the result is a new Environment holding ``env``'s content plus the file's; ``env`` is untouched.
    ``limits`` bound the evaluation (``lang.DEFAULT_LIMITS`` when None).
    """
    path = Path(path)
    if env is None:
        env = Environment(name=path.resolve().parent.name, context=path.resolve().parent)
    return StarlarkLoader(env, limits=limits).exec_file(path, function)


def exec_cell(source: str, *, name: str = "<cell>", env: Environment | None = None, start=None,
              limits: EvalLimits | None = None) -> Environment:
    """Execute a Starlark cell body; ``load()`` paths are relative to the environment's context.

    Returns a new Environment (``env``'s content plus the cell's); ``env`` itself is never changed.
    ``start`` (an llb.State or a chain state) is what the cell builds on in place of ``base()``; the
    chaining form continues it as ``start``. ``limits`` bound the evaluation (see ``EvalLimits``).
    """
    return StarlarkLoader(env, start=start, start_at=Location(name), limits=limits).exec_source(source, name)
