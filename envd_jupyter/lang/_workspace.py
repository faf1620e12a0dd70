"""What a notebook (or a plain script) keeps across cells: each cell's state, named states, past solves.

``Workspace.run_cell(cell_id, source, name=...)`` runs one cell body and keeps what it gave under
``cell_id``, so running a cell again replaces its contribution instead of adding to it. A body is

* Python: the value of its last expression is the cell's state (an ``llb.State``, or a chain state
  from ``image(...)``). The chaining names (``image``, ``merge``, ``diff``, ``from_environment``),
  llb's helpers (``scratch``, ``local``, ``cache_mount``, ...) and ``llb`` itself are in scope, over
  the user's ``namespace``; names the cell assigns stay in the cell;
* Starlark: a build.envd body (``def build():`` or top-level calls), run as ``exec_cell`` runs it.

``breakpoint()`` marks the stage built so far for steppers in Starlark; a Python body names the state
(``breakpoint(state)``, same as ``state.breakpoint()``) and never reaches pdb in the kernel.

``start`` (the state another cell named) is bound as ``start`` in Python and replaces ``base()`` in
Starlark. Every op a cell makes records the cell's file (``cell[<id>]`` unless ``filename`` is given)
and line, so a failing step names the cell line. llb ops take their location from ``llb.located``,
so each call in a Python body is rewritten to ``_envd_at(line, f)(...)``, which runs ``f`` under the
call's line; chain states read their line from the calling frame, so the call is also moved to the
line of its method name (Python would give a multi-line chain's first line to every call in it).

Nothing here imports IPython or grpc: a script uses the same object a notebook does.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Mapping

from envd_jupyter import llb
from envd_jupyter.lang import _chain as chain
from envd_jupyter.lang._build import context_unique_id
from envd_jupyter.lang._chain import EnvdState, from_environment, rooted_at
from envd_jupyter.lang._environment import Environment, as_location
from envd_jupyter.lang._graph import CONTEXT
from envd_jupyter.lang._errors import CellError, EnvdArgumentError, EnvdError, EnvdSyntaxError, Location
from envd_jupyter.lang._sandbox import EvalLimits
from envd_jupyter.lang._starlark_loader import exec_cell

LANGUAGES = ("python", "starlark")
AT_CALL = "_envd_at"
# Calls that read their caller's frame: through the wrapper they would read the wrapper's frame.
_FRAME_READERS = frozenset({"super", "locals", "vars", "dir", "globals", "eval", "exec"})
# llb's helpers as a Python cell sees them (image, merge and diff are the chaining form's).
_LLB_HELPERS = ("scratch", "local", "git", "http", "oci_layout", "cache_mount", "bind_mount", "tmpfs_mount",
                "secret_env", "secret_mount", "ssh_mount", "mkdir", "mkfile", "rm", "symlink", "copy")


@dataclass(frozen=True)
class Cell:
    """One cell's contribution: its state under ``name``, and that state's Definition."""

    cell_id: Any
    name: str
    language: str
    state: llb.State | EnvdState
    definition: llb.Definition  # the default (parallel) form; ``marshal(caps)`` for a given daemon
    location_file: str  # what the cell's ops name as their file: "cell[3]", or the filename given
    local_unique_id: str  # the workspace's, so local sources keep their digests from run to run
    context: Path  # the build context local sources of this cell read
    network: str | None = None

    def marshal(self, caps=None) -> llb.Definition:
        """The Definition in the form a daemon with ``caps`` accepts (``Client.caps()`` or its ``.llb`` ids)."""
        return _marshal(self.state, caps, self.local_unique_id)

    def solve_options(self) -> dict[str, Any]:
        """What a solve of this cell needs besides the graph: the build context, host networking if asked."""
        return solve_options(self.context, self.network)


def solve_options(context: Path, network: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {"local_dirs": {CONTEXT: str(context)}}
    if network == "host":  # an entitlement the daemon must be asked for
        options["entitlements"] = ["network.host"]
    return options


def _marshal(state: llb.State | EnvdState, caps, local_unique_id: str) -> llb.Definition:
    if isinstance(state, EnvdState):
        return state.marshal(caps, local_unique_id=local_unique_id)
    return state.marshal(local_unique_id=local_unique_id)  # the client lowers an llb merge itself


class Workspace:
    """The cells run so far, by cell id, and the Definition last solved under each state name."""

    def __init__(self, context: str | Path | None = None, *, network: str | None = None,
                 limits: EvalLimits | None = None):
        self.context = Path(context) if context is not None else Path.cwd()
        self.network = network  # for the execs of chain states and Starlark cells ("host", "none", None)
        self.limits = limits  # bounds of each Starlark cell's evaluation (None: lang.DEFAULT_LIMITS)
        self._local_unique_id = context_unique_id(Environment(context=self.context))
        self._cells: dict[Any, Cell] = {}  # by cell id, the one run last at the end
        self._solved: dict[str, list[llb.Definition]] = {}  # the last two solves of each name

    def run_cell(self, cell_id, source: str, *, name: str, language: str = "python", start=None,
                 namespace: Mapping[str, Any] | None = None, filename: str | None = None) -> Cell:
        """Run a cell body and keep its state under ``name`` (replacing what ``cell_id`` gave before).

        A failing cell raises an EnvdError naming its line and leaves the workspace as it was.
        """
        if language not in LANGUAGES:
            raise EnvdArgumentError(f"run_cell: language must be 'python' or 'starlark', got {language!r}")
        if not isinstance(name, str) or not name:
            raise EnvdArgumentError(f"run_cell: name must be a non-empty string, got {name!r}")
        location_file = filename or f"cell[{cell_id}]"
        if language == "starlark":
            env = exec_cell(source, name=location_file, env=Environment(name=name, context=self.context), start=start,
                            limits=self.limits)
            state = from_environment(env, network=self.network)
        else:
            state = self._run_python(source, location_file, name, start, namespace or {})
        cell = Cell(cell_id, name, language, state, _marshal(state, None, self._local_unique_id), location_file,
                    self._local_unique_id, self.context, self.network)
        self._cells.pop(cell_id, None)
        self._cells[cell_id] = cell
        return cell

    @property
    def states(self) -> dict[str, llb.State | EnvdState]:
        """State name → state; when two cells give one name, the one run last wins."""
        return {cell.name: cell.state for cell in self._cells.values()}

    def get(self, name: str) -> llb.State | EnvdState:
        states = self.states
        if name not in states:
            raise EnvdError(f"no state named {name!r} (known: {', '.join(sorted(states)) or 'none yet'})")
        return states[name]

    def cell(self, name: str) -> Cell:
        """The cell that last gave ``name`` (an EnvdError listing the known names if none did)."""
        self.get(name)
        return next(cell for cell in reversed(self._cells.values()) if cell.name == name)

    def record_solve(self, name: str, definition: llb.Definition) -> None:
        """Remember the Definition solved under ``name``: the next ``previous(name)``, for ``explain_rebuild``."""
        if not isinstance(definition, llb.Definition):
            raise EnvdArgumentError(f"record_solve: want an llb.Definition, got {type(definition).__name__}")
        self._solved[name] = [*self._solved.get(name, [])[-1:], definition]

    def previous(self, name: str) -> llb.Definition | None:
        """The Definition last recorded for ``name`` (ask before recording the new one), None before any."""
        solves = self._solved.get(name)
        return solves[-1] if solves else None

    def solves(self, name: str) -> tuple[llb.Definition, ...]:
        """The last two Definitions solved under ``name``, oldest first: what ``%envd_why`` compares."""
        return tuple(self._solved.get(name, ()))

    def _run_python(self, source: str, filename: str, name: str, start, namespace: Mapping[str, Any]):
        body, last, last_line = _compile(source, filename)
        scope = {**namespace, **self._cell_names(name), AT_CALL: partial(_located_call, filename)}
        if start is not None:
            scope["start"] = start
        try:
            exec(body, scope)
            value = eval(last, scope)
        except EnvdError as err:
            if err.at is not None:
                raise  # already one line naming where the user wrote the call
            raise type(err)(err.message, Location(filename, _cell_line(err.__traceback__, filename))) from None
        except Exception as err:
            at = Location(filename, _cell_line(err.__traceback__, filename))
            raise CellError(f"{type(err).__name__}: {err}", at) from None
        if not isinstance(value, (llb.State, EnvdState)):
            raise CellError(f"the cell's last expression must give a state (an llb.State or image(...)), "
                            f"got {type(value).__name__}", Location(filename, last_line))
        return value

    def _cell_names(self, name: str) -> dict[str, Any]:
        def chained(value):
            """An llb.State among chain states continues as a chain state with no image config of its own."""
            if isinstance(value, llb.State):
                env = rooted_at(Environment(name=name, context=self.context), value, as_location(None))
                return EnvdState(env, network=self.network)
            return value

        def merge(states):
            states = list(states)
            if states and all(isinstance(s, llb.State) for s in states):
                return llb.merge(states)
            return chain.merge([chained(s) for s in states])

        def diff(lower, upper):
            if isinstance(lower, llb.State) and isinstance(upper, llb.State):
                return llb.diff(lower, upper)
            return chain.diff(chained(lower), chained(upper))

        names = {helper: getattr(llb, helper) for helper in _LLB_HELPERS}
        names.update(llb=llb, merge=merge, diff=diff, breakpoint=_breakpoint,
                     from_environment=partial(from_environment, network=self.network),
                     image=partial(chain.image, name=name, context=self.context, network=self.network))
        return names


def _breakpoint(state=None):
    """A Python cell's ``breakpoint(state)``: ``state.breakpoint()``, never pdb inside the kernel.

    A Python body has no current state to mark, so the state is named (Starlark's ``breakpoint()`` has one).
    """
    if not isinstance(state, (llb.State, EnvdState)):
        given = "nothing" if state is None else type(state).__name__
        raise CellError(f"breakpoint: give the state to pause after, as breakpoint(state) or state.breakpoint() "
                        f"(got {given})")
    return state.breakpoint()


def _compile(source: str, filename: str):
    """The body and the last expression as code objects (calls located), and the last expression's line."""
    try:
        tree = ast.parse(source, filename)
        if not tree.body or not isinstance(tree.body[-1], ast.Expr):
            raise CellError("the cell must end with an expression giving its state (an llb.State or image(...))",
                            Location(filename, tree.body[-1].lineno if tree.body else 0))
        tree = ast.fix_missing_locations(_LocateCalls().visit(tree))
        last = tree.body.pop()
        return (compile(tree, filename, "exec"), compile(ast.Expression(last.value), filename, "eval"),
                last.lineno)
    except SyntaxError as err:
        raise EnvdSyntaxError(f"{type(err).__name__}: {err.msg}", Location(filename, err.lineno or 0)) from None


class _LocateCalls(ast.NodeTransformer):
    """``f(args)`` → ``_envd_at(line, f)(args)``, and a method call placed on its method name's line."""

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Name) and func.id in _FRAME_READERS:
            return node
        if isinstance(func, ast.Attribute):
            node.lineno, node.col_offset = func.end_lineno, func.end_col_offset - len(func.attr)
        wrapper = ast.Call(ast.Name(AT_CALL, ast.Load()), [ast.Constant(node.lineno), func], [])
        node.func = ast.copy_location(wrapper, func)
        return node


def _located_call(filename: str, line: int, function):
    """``function``, called under ``llb.located(filename:line)``: the llb ops it makes name the cell line."""
    def call(*args, **kwargs):
        with llb.located(Location(filename, line)):
            return function(*args, **kwargs)
    return call


def _cell_line(traceback, filename: str) -> int:
    """The line of the innermost frame of the cell in ``traceback`` (0 if the cell has none)."""
    line = 0
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == filename:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line
