"""``%%envd`` and its line magics: parse, call one library function, display.

Settings are traitlets (``%config Envd.builder = "docker+unix:///…"``), also read from
``[tool.envd_jupyter]`` in a ``pyproject.toml`` beside the notebook. Input mistakes are one-line
``UsageError``s; build failures are the library's short errors (step, exit code, last log lines,
the cell line), so a failing cell fails the notebook without a Python traceback.
"""

from __future__ import annotations

import codecs
import contextvars
import json
import os
import shlex
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import Bool, CaselessStrEnum, Dict, Float, Int, Unicode, Union, default, observe, validate
from traitlets.config import Configurable

from envd_jupyter.notebook._panel import PanelChannel
from envd_jupyter.notebook._record import ArchiveWriter, BuildRecording, FleetFacts, notebook_path
from envd_jupyter.notebook._settings import apply_pyproject_settings, checked_builders, checked_tls
from envd_jupyter.notebook._values import ExitCode, Exported, Listing, Text
from envd_jupyter.notebook._view import BuildView, builders_view, dag_view, keep_widgets_live, scores_view, why_view

_WAIT_SLICE = 0.2  # seconds between interrupt checks while waiting for a background build


@magics_class
class Envd(Magics, Configurable):
    """Build BuildKit LLB graphs cell by cell: see ``%%envd?``."""

    builder = Unicode("", config=True, help="Address of the builder (e.g. docker+unix:///var/run/docker.sock); "
                                            "empty: discover one like buildctl does.")
    builders = Dict(config=True, help="Several builders by name, scheduled as one fleet: {name: address} or "
                                      "{name: {address, tls}} (tls as Envd.tls); --builder NAME picks one.")
    tls = Union([Bool(), Dict()], default_value=None, allow_none=True, config=True,
                help="TLS of Envd.builder and --builder ADDR: {ca, cert, key, server_name, verify} (paths "
                     "relative to the notebook); false allows plain text to a remote daemon; None: docker's "
                     "environment (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH).")
    fleet = Unicode("", config=True, help="Path of a fleet config file (builders + scheduler profiles).")
    progress = CaselessStrEnum(["auto", "plain", "none"], "auto", config=True,
                               help="auto: widgets in Jupyter, plain text in a terminal; plain; none.")
    dag_collapse = Int(12, config=True, help="Linear chains longer than this collapse into one DAG node.")
    short_errors = Bool(True, config=True, help="Show build failures as a short summary instead of a traceback.")
    timeout = Float(0.0, config=True, help="Seconds a solve may take (0: no limit).")
    max_open_stages = Int(8, config=True, help="Solved stages kept open for browsing; the oldest closes first.")
    secrets = Dict(value_trait=Unicode(), config=True,
                   help="Build secrets by id, for llb.secret_mount / llb.secret_env: {id: NAME}, the value read "
                        "from environment variable NAME or, when it is unset, the file NAME (never the value itself: "
                        "settings are saved with the notebook). Values are masked as *** in logs and errors.")
    network = Unicode("", config=True, help="Network of envd steps (build.envd cells and image(...) chains): "
                                            "'host' (asks the daemon for network.host), 'none', or '' for "
                                            "the daemon's sandbox.")
    history = Unicode(config=True, help="Build archive (SQLite) every %%envd build is recorded in; '' turns "
                                        "recording off. Default: $ENVD_JUPYTER_HISTORY or "
                                        "~/.local/share/envd-jupyter/history.sqlite3.")

    @default("history")
    def _default_history(self) -> str:
        from envd_jupyter.history import default_path

        return str(default_path())

    def __init__(self, shell):
        Configurable.__init__(self, config=shell.config)
        Magics.__init__(self, shell=shell)
        shell.configurables.append(self)
        apply_pyproject_settings(self, Path.cwd())
        from envd_jupyter import lang

        self.workspace = lang.Workspace(context=Path.cwd(), network=self.network or None)
        self._fleets: dict[Any, Any] = {}
        self._stages: dict[str, Future] = {}
        self._steppers: dict[str, Any] = {}  # state name -> _stepper_view.Stepping while %envd_step walks it
        self._lock = threading.Lock()
        # Ending a replaced stage's build waits for the daemon (Return, then the solve's answer):
        # cleanup the next cell's result must not wait for, so one thread does it behind the cells.
        self._closer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="envd-close-stage")
        self._archive_writer: ArchiveWriter | None = None
        self.panel = PanelChannel(self)  # the JupyterLab panel's comm; registered by load_ipython_extension

    @validate("tls")
    def _valid_tls(self, proposal):
        return checked_tls(proposal["value"])

    @validate("builders")
    def _valid_builders(self, proposal):
        return checked_builders(proposal["value"])

    @observe("network")
    def _network_changed(self, change) -> None:
        self.workspace.network = change["new"] or None

    # -- %%envd ---------------------------------------------------------------------------------
    @magic_arguments()
    @argument("name", help="Name the resulting state is bound to in the notebook.")
    @argument("--from", dest="start", metavar="STATE", help="Continue from an earlier cell's state.")
    @argument("--builder", metavar="ADDR", help="Solve on this builder (an address, with Envd.tls, or a name "
                                                "in Envd.builders) instead of the configured one.")
    @argument("--fleet", metavar="CONFIG", help="Schedule across the builders of this fleet config file.")
    @argument("--lang", choices=["python", "starlark"], help="Body language (default: starlark when the "
                                                             "body defines build(), else python).")
    @argument("--no-solve", action="store_true", help="Only show the graph.")
    @argument("--progress", choices=["auto", "plain", "none"], help="Progress display for this cell.")
    @argument("--export", action="append", default=[], metavar="KIND=VALUE",
              help="After the solve: image=NAME, dir=PATH or tar=FILE (repeatable).")
    @argument("--background", action="store_true", help="Return at once; the build goes on behind the cell.")
    @cell_magic
    def envd(self, line: str, cell: str):
        """Build a state from the cell body, show its DAG, schedule and solve it with live progress.

        The body is Python (``image("python:3.11").apt_packages(["git"]).run("make")``, ``merge``,
        ``diff``, ``llb`` helpers; the last expression is the state) or a ``build.envd`` body.
        """
        args = parse_argstring(self.envd, line)
        self._stop_stepping(args.name)
        start = self._state(args.start) if args.start else None
        language = args.lang or ("starlark" if "def build(" in cell else "python")
        cell_result = self._lang_call(lambda: self.workspace.run_cell(
            self._cell_id(args.name), cell, name=args.name, language=language, start=start,
            namespace=self.shell.user_ns, filename=f"cell[{args.name}]"))
        self.shell.user_ns[args.name] = cell_result.state
        view = BuildView(args.name, cell_result.definition, collapse=self.dag_collapse,
                         mode=self._mode(args.progress))
        view.show()
        if args.no_solve:
            view.graph_only()
            return None
        fleet = self._fleet(args.builder, args.fleet)
        build = lambda: self._build(fleet, args.name, cell_result, view, args.export)  # noqa: E731
        if args.background:
            self._remember(args.name, self._in_background(build))
            return None
        future: Future = Future()
        self._remember(args.name, future)
        try:
            future.set_result(self._failing_short(build))
        except BaseException as exc:
            _settle_failed(future, exc)
            raise
        return None

    def _build(self, fleet, name: str, cell_result, view: BuildView, exports: list[str]):
        """Schedule, solve with live progress, record the solve, export: the cell's one library call each."""
        options = self._solve_options(cell_result)
        recording = BuildRecording(state=name, name=self._build_name(name), cell_id=self._cell_id(name),
                                   notebook=notebook_path(self.shell), definition=cell_result.definition,
                                   secrets=tuple(options.get("secrets", {})))

        def scheduled(scheduling, definition) -> None:
            recording.scheduled(scheduling, definition)
            view.scheduled(scheduling, definition)

        try:
            stage = fleet.build(cell_result, name=self._build_name(name), on_event=view.on_event,
                                on_scheduled=scheduled, timeout=self.timeout or None, keep_on_failure=True,
                                on_failover=_say_failover, **options)
        except BaseException as exc:
            recording.finished()
            # bound now: Python unbinds ``exc`` when this block ends, and the entry is made later
            self._archive(lambda error=exc: recording.entry(FleetFacts(fleet), error=error))
            view.failed(exc, previous=self.workspace.previous(name))
            raise
        recording.finished()
        self._archive(lambda: recording.entry(FleetFacts(fleet), stage=stage))
        previous = self.workspace.previous(name)
        self.workspace.record_solve(name, stage.definition)
        view.finished(stage, previous=previous)
        for spec in exports:
            result = fleet.export(cell_result, spec, builder=stage.builder, name=self._build_name(name),
                                  timeout=self.timeout or None, **options)
            view.exported(spec, result)
        return stage

    def _archive(self, make_entry) -> None:
        """One archive entry for this build, written behind the cell (off when ``Envd.history`` is "")."""
        path = self.history
        if not path:
            return
        if self._archive_writer is None or self._archive_writer.path != path:
            if self._archive_writer is not None:
                self._archive_writer.close()  # another path was configured: finish the old one's writes
            self._archive_writer = ArchiveWriter(path)
        self._archive_writer.submit(make_entry)

    # -- line magics ------------------------------------------------------------------------------
    @line_magic
    def envd_builders(self, line: str):
        """%envd_builders [--builder ADDR | --fleet CONFIG]: what every builder reports."""
        args = _parse_target_line(line)
        return builders_view(self._fleet(args.get("builder"), args.get("fleet")).builders(refresh=True))

    @magic_arguments()
    @argument("state", help="A state made by %%envd.")
    @line_magic
    def envd_dag(self, line: str):
        """%envd_dag STATE: the state's graph."""
        args = parse_argstring(self.envd_dag, line)
        stage = self._solved_stage(args.state)
        if stage is not None:  # the graph the builder ran, coloured by what happened to each step
            graph = self._definition(args.state) if stage.note else stage.definition  # a failed build: all of it
            return dag_view(graph, collapse=self.dag_collapse, model=stage.model)
        return dag_view(self._definition(args.state), collapse=self.dag_collapse)

    @magic_arguments()
    @argument("state")
    @argument("path", nargs="?", default="/")
    @line_magic
    def envd_ls(self, line: str):
        """%envd_ls STATE [PATH]: the directory in the solved stage (``x = %envd_ls s /etc`` keeps it)."""
        args = parse_argstring(self.envd_ls, line)
        stage = self._stage(args.state)
        label = f"{args.path} ({stage.note})" if stage.note else args.path
        return Listing(label, self._failing_short(lambda: stage.list_dir(args.path)))

    @magic_arguments()
    @argument("state")
    @argument("path")
    @argument("--max-bytes", type=int, default=256 * 1024)
    @line_magic
    def envd_cat(self, line: str):
        """%envd_cat STATE PATH: a file of the solved stage (the first --max-bytes bytes)."""
        args = parse_argstring(self.envd_cat, line)
        stage = self._stage(args.state)
        data = self._failing_short(lambda: stage.read_file(args.path, limit=args.max_bytes + 1))
        return Text.from_bytes(data, limit=args.max_bytes, what=args.path)

    @magic_arguments()
    @argument("state")
    @argument("step", nargs="?", help="A step's digest (prefix) or part of its name; all steps when omitted.")
    @line_magic
    def envd_logs(self, line: str):
        """%envd_logs STATE [STEP]: logs of the state's last solve."""
        args = parse_argstring(self.envd_logs, line)
        stage = self._stage(args.state)
        return Text(self._failing_short(lambda: stage.logs(args.step)) or "(no log output)")

    @magic_arguments()
    @argument("state")
    @line_magic
    def envd_why(self, line: str):
        """%envd_why STATE: what changed since the state's previous solve, and which steps re-ran."""
        args = parse_argstring(self.envd_why, line)
        from envd_jupyter import lang

        stage = self._stage(args.state)
        solves = self.workspace.solves(args.state)
        if len(solves) < 2:
            raise UsageError(f"{args.state} has been solved once: re-run its cell after a change, then ask why")
        return why_view(args.state, lang.explain_rebuild(solves[0], solves[1], stage.model))

    @magic_arguments()
    @argument("state")
    @argument("--image", metavar="NAME")
    @argument("--dir", metavar="PATH")
    @argument("--tar", metavar="FILE")
    @line_magic
    def envd_export(self, line: str):
        """%envd_export STATE --image NAME | --dir PATH | --tar FILE: export the solved state."""
        args = parse_argstring(self.envd_export, line)
        cell = self._cell(args.state)
        specs = [f"{kind}={value}" for kind, value in (("image", args.image), ("dir", args.dir), ("tar", args.tar))
                 if value]
        if len(specs) != 1:
            raise UsageError("%envd_export needs exactly one of --image NAME, --dir PATH, --tar FILE")
        stage = self._stage(args.state)
        fleet = self._fleet(None, None)
        result = self._failing_short(lambda: fleet.export(cell, specs[0], builder=stage.builder,
                                                          name=self._build_name(args.state),
                                                          timeout=self.timeout or None, **self._solve_options(cell)))
        return Exported(args.state, specs[0], stage.builder, fleet.address(stage.builder), result.elapsed)

    @line_magic
    def envd_exec(self, line: str):
        """%envd_exec STATE [--user U] [--workdir D] [--env K=V]... -- CMD...: run CMD in the solved stage.

        stdout and stderr stream into the cell; returns the exit code. The stage is unchanged afterwards
        (what CMD writes is dropped with its container). Interrupting kills CMD; the stage stays open.
        """
        request = parse_exec_line(line)
        stage = self._stage(request.state)
        if stage.exec_note:
            print(f"{request.state}: {stage.exec_note}", file=sys.stderr)
        decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in (1, 2)}

        def show(fd: int, data: bytes) -> None:
            stream = sys.stderr if fd == 2 else sys.stdout
            stream.write(decoders[2 if fd == 2 else 1].decode(data))
            stream.flush()

        def run():
            from envd_jupyter import buildkit

            try:
                return stage.exec(request.argv, user=request.user, cwd=request.workdir, env=request.env,
                                  on_output=show)
            except KeyboardInterrupt:
                raise buildkit.ExecError(f"interrupted: {shlex.join(request.argv)} was killed; "
                                         f"{request.state} is unchanged and still open") from None

        return ExitCode(self._failing_short(run).exit_code)

    @magic_arguments()
    @argument("state")
    @argument("--break", dest="breakpoints", action="append", default=[], metavar="STEP",
              help="Pause at this step (its name or a digest prefix) on --continue; repeatable.")
    @argument("--continue", dest="resume", action="store_true", help="Run on to the next breakpoint or the end.")
    @argument("--stop", action="store_true", help="Stop stepping and end the build.")
    @line_magic
    def envd_step(self, line: str):
        """%envd_step STATE [--break STEP]... [--continue | --stop]: solve STATE one step at a time.

        Each call solves the next step in dependency order (or, with --continue, on to the next
        breakpoint) in one build kept open between calls; the pause is STATE's stage, so %envd_ls,
        %envd_cat and %envd_exec look at the filesystem of the step just solved. In Jupyter it
        shows the stepper (Next / Continue / Stop buttons), the DAG at the paused step with the
        rebuild reasons, and the browser; a failing step shows its failure view, then fails the cell.
        """
        args = parse_argstring(self.envd_step, line)
        cell = self._cell(args.state)
        if args.stop:
            if not self._stop_stepping(args.state):
                raise UsageError(f"{args.state} is not being stepped through")
            return Text(f"{args.state}: stopped stepping; the build has ended")
        stepping = self._steppers.get(args.state)
        if stepping is None:
            stepping = self._start_stepping(args.state, cell, args.breakpoints)
        else:
            stepping.add_breakpoints(args.breakpoints)
        try:
            self._failing_short(lambda: stepping.advance("continue" if args.resume else "next"))
        finally:
            if self._mode(None) != "none":
                stepping.show()
        # A live stepper moves on with its buttons: a returned line would soon say where it no longer is.
        return None if stepping.live else Text(stepping.summary())

    def _start_stepping(self, name: str, cell, breakpoints: list[str]):
        from envd_jupyter import lang
        from envd_jupyter.notebook._stepper_view import Stepping

        fleet = self._fleet(None, None)
        stepped = self._failing_short(lambda: fleet.stepper(
            cell, breakpoints=breakpoints, name=self._build_name(name), timeout=self.timeout or None,
            **self._solve_options(cell)))
        previous = self.workspace.previous(name)
        report = lang.explain_rebuild(previous, stepped.stepper.definition) if previous is not None else None
        stepping = Stepping(name, stepped, report=report, collapse=self.dag_collapse,
                            live=self._mode(None) == "widget" and keep_widgets_live(),
                            remember=lambda stage: self._remember(name, _settled(stage)), ended=self._forget_stepping)
        self._steppers[name] = stepping
        return stepping

    def _forget_stepping(self, stepping) -> None:
        if self._steppers.get(stepping.name) is stepping:
            del self._steppers[stepping.name]
        self.panel.sync()  # the panel's stepper position ends too (a Stop button runs outside any cell)

    def _stop_stepping(self, name: str) -> bool:
        """End the stepped build of ``name`` (its last pause closes with it); False when none was being stepped."""
        stepping = self._steppers.pop(name, None)
        if stepping is None:
            return False
        stepping.stop()
        return True

    @line_magic
    def envd_scores(self, line: str):
        """%envd_scores: every score of the last scheduling decision."""
        fleets = [f for f in self._fleets.values() if f.last_scheduling is not None]
        if not fleets:
            raise UsageError("no build has been scheduled yet in this kernel")
        return scores_view(max(fleets, key=lambda f: f.last_scheduling_at).last_scheduling)

    # -- helpers ---------------------------------------------------------------------------------
    def _lang_call(self, call):
        """Run a lang call; its one-line errors (with the cell line) become a plain UsageError."""
        from envd_jupyter import lang

        try:
            return call()
        except lang.EnvdError as exc:
            raise UsageError(str(exc)) from None

    def _failing_short(self, call):
        """Library errors keep their one-line rendering; ``short_errors = False`` shows the traceback too."""
        from envd_jupyter._errors import ShortError

        try:
            return call()
        except ShortError as exc:
            if self.short_errors:
                raise
            raise RuntimeError(str(exc)) from exc
        except KeyboardInterrupt:
            from envd_jupyter.buildkit import SolveCancelled

            raise SolveCancelled("interrupted: the solve was cancelled on the daemon") from None

    def _state(self, name: str):
        return self._lang_call(lambda: self.workspace.get(name))

    def _cell(self, name: str):
        return self._lang_call(lambda: self.workspace.cell(name))

    def _definition(self, name: str):
        return self._cell(name).definition

    def _stage(self, name: str):
        """The open stage of ``name``: waits for a background build, solves an unsolved state."""
        cell = self._cell(name)  # unknown names are a UsageError listing the known ones
        future = self._stages.get(name)
        if future is None or (future.done() and future.exception() is None and future.result().closed):
            fleet = self._fleet(None, None)
            future = Future()
            future.set_result(self._failing_short(lambda: fleet.build(
                cell, name=self._build_name(name), timeout=self.timeout or None, **self._solve_options(cell))))
            self._remember(name, future)
        while True:  # a bounded slice at a time, so an interrupt always gets through
            try:
                return future.result(timeout=_WAIT_SLICE)
            except TimeoutError:
                continue

    def _solved_stage(self, name: str):
        """The open stage of ``name`` if its build is done and succeeded, else None (never waits)."""
        self._cell(name)
        future = self._stages.get(name)
        if future is None or not future.done() or future.exception() is not None or future.result().closed:
            return None
        return future.result()

    def _remember(self, name: str, future: Future) -> None:
        with self._lock:
            old = self._stages.pop(name, None)
            self._stages[name] = future
            excess = list(self._stages)[:-self.max_open_stages] if self.max_open_stages > 0 else []
            closing = [old] + [self._stages.pop(n) for n in excess]
        for item in closing:
            if item is not None and item is not future:
                item.add_done_callback(self._close_later)
        self.panel.track(name, future)

    def build_future(self, name: str) -> Future | None:
        """The last build (or stepping pause) of ``name`` in this kernel, None if it was never built."""
        return self._stages.get(name)

    def stepping_names(self) -> list[str]:
        """States being stepped through with %envd_step now."""
        return list(self._steppers)

    def _close_later(self, future: Future) -> None:
        try:
            self._closer.submit(_close_stage, future)
        except RuntimeError:  # the extension was unloaded meanwhile: close here
            _close_stage(future)

    def _in_background(self, build) -> Future:
        future: Future = Future()

        def run() -> None:
            try:
                future.set_result(build())
            except BaseException as exc:  # shown by the view; raised where the state is used next
                _settle_failed(future, exc)

        context = contextvars.copy_context()  # ipykernel routes a thread's output by the cell header in it
        threading.Thread(target=context.run, args=(run,), name="envd-background-build", daemon=True).start()
        return future

    def _fleet(self, builder: str | None, fleet_config: str | None):
        """The fleet a build goes to: --builder / --fleet, else Envd.fleet / builders / builder, else discovery."""
        from envd_jupyter import fleet

        if builder and builder in self.builders:
            key: Any = ("builders", json.dumps({builder: self.builders[builder]}, sort_keys=True))
        elif builder:
            key = ("builder", builder, json.dumps(self.tls, sort_keys=True))
        elif fleet_config:
            key = ("fleet", str(Path(fleet_config).resolve()))
        elif self.fleet:
            key = ("fleet", str(Path(self.fleet).resolve()))
        elif self.builders:
            key = ("builders", json.dumps(self.builders, sort_keys=True))
        else:
            key = ("builder", self.builder or None, json.dumps(self.tls, sort_keys=True))
        found = self._fleets.get(key)
        if found is None:
            kind, value = key[:2]
            try:
                if kind == "fleet":
                    found = fleet.Fleet.from_file(value)
                elif kind == "builders":
                    found = fleet.Fleet(json.loads(value))
                else:
                    found = fleet.Fleet.single(value, tls=self.tls)
            except fleet.FleetError as exc:
                raise UsageError(str(exc)) from None
            self._fleets[key] = found
        return found

    def _solve_options(self, cell) -> dict[str, Any]:
        """What a solve of ``cell`` needs besides its graph: the cell's own options and the secrets."""
        options = cell.solve_options()
        if self.secrets:
            options["secrets"] = dict(self.secrets)
        return options

    def _mode(self, override: str | None) -> str:
        mode = override or self.progress
        if mode == "auto":
            return "widget" if _in_jupyter_kernel(self.shell) else "plain"
        return mode

    def _cell_id(self, name: str) -> str:
        """The front end's cell id (Lab and nbclient send it); the state name where none is sent."""
        header = getattr(self.shell, "parent_header", None) or {}
        return (header.get("metadata") or {}).get("cellId") or f"name:{name}"

    @staticmethod
    def _build_name(name: str) -> str:
        """What BuildKit's history shows: the notebook and the state (``docker buildx history ls``)."""
        notebook = os.environ.get("JPY_SESSION_NAME", "")
        return f"{Path(notebook).name or 'notebook'}: {name}"

    def close(self) -> None:
        self.panel.unregister()
        for name in list(self._steppers):
            self._stop_stepping(name)
        self._closer.shutdown(wait=True)
        for future in self._stages.values():
            future.add_done_callback(_close_stage)
        self._stages.clear()
        for fleet in self._fleets.values():
            fleet.close()
        self._fleets.clear()
        if self._archive_writer is not None:
            self._archive_writer.close()
            self._archive_writer = None


def _settled(stage) -> Future:
    future: Future = Future()
    future.set_result(stage)
    return future


def _settle_failed(future: Future, error: BaseException) -> None:
    """A failed build's future: the stage before the failed step where one was kept open, else the error."""
    stage = getattr(error, "stage", None) or getattr(error.__cause__, "stage", None)
    if stage is not None:
        future.set_result(stage)
    else:
        future.set_exception(error)


def _close_stage(future: Future) -> None:
    if future.exception() is None:
        try:
            future.result().close()
        except Exception as exc:  # closing must never break the cell that replaced the stage
            print(f"envd: closing an old stage failed: {exc}", file=sys.stderr)


def _in_jupyter_kernel(shell) -> bool:
    return type(shell).__name__ == "ZMQInteractiveShell"


def _parse_target_line(line: str) -> dict[str, str]:
    words = line.split()
    found: dict[str, str] = {}
    while words:
        word = words.pop(0)
        if word in ("--builder", "--fleet") and words:
            found[word[2:]] = words.pop(0)
        else:
            raise UsageError(f"unexpected {word!r}: use --builder ADDR or --fleet CONFIG")
    return found


@dataclass(frozen=True)
class ExecRequest:
    state: str
    argv: list[str]
    user: str | None = None
    workdir: str | None = None
    env: dict[str, str] = field(default_factory=dict)


_EXEC_USAGE = "usage: %envd_exec STATE [--user U] [--workdir D] [--env K=V]... -- CMD..."


def parse_exec_line(line: str) -> ExecRequest:
    """``STATE [--user U] [--workdir D] [--env K=V]... -- CMD...`` (CMD split as a shell would)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%envd_exec: {exc}") from None
    if "--" not in words:
        raise UsageError(f"{_EXEC_USAGE} (the command follows --)")
    split = words.index("--")
    options, argv = words[:split], words[split + 1:]
    if not options or options[0].startswith("-") or not argv:
        raise UsageError(_EXEC_USAGE)
    found: dict[str, Any] = {"user": None, "workdir": None, "env": {}}
    rest = options[1:]
    while rest:
        flag = rest.pop(0)
        if flag not in ("--user", "--workdir", "--env") or not rest:
            raise UsageError(f"unexpected {flag!r}: {_EXEC_USAGE}")
        value = rest.pop(0)
        if flag == "--env":
            key, sep, text = value.partition("=")
            if not sep or not key:
                raise UsageError(f"--env {value!r}: expected KEY=VALUE")
            found["env"][key] = text
        else:
            found[flag[2:]] = value
    return ExecRequest(options[0], argv, **found)


def _say_failover(line: str) -> None:
    """A builder died and the build moved on: the fleet's one line, under the cell that started the build."""
    print(line, file=sys.stderr, flush=True)
