"""The ``%cloaca_*`` magics: argument parsing, then calls into the kit. Nothing else lives here."""

from __future__ import annotations

import json
import shlex
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from cloaca_nb.errors import NotebookError

MAGIC_NAMES = ("cloaca_dag", "cloaca_run", "cloaca_build", "cloaca_tasks")


def parse_argstring(magic: Any, line: str) -> Any:
    """Parse a magic's line with shell quoting (``-p "label=a b"``, ``-p label='a b'``).

    IPython's own ``parse_argstring`` keeps the quotes inside tokens, which would turn
    ``-p "label=a b"`` into the key ``"label``.
    """
    try:
        argv = shlex.split(line, posix=True)
    except ValueError as exc:  # e.g. an unterminated quote
        raise NotebookError(f"cannot parse the magic's arguments: {exc}: {line!r}") from exc
    return magic.parser.parse_args(argv)


def parse_params(pairs: list[str] | None, context_file: str | None) -> dict[str, Any]:
    """``--context-file`` (a JSON object) then ``-p key=value`` pairs (JSON, else a string)."""
    context: dict[str, Any] = {}
    if context_file:
        data = json.loads(Path(context_file).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise NotebookError(f"--context-file {context_file} must hold a JSON object")
        context.update(data)
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise NotebookError(f"-p expects key=value, got {pair!r}")
        try:
            context[key] = json.loads(raw)
        except json.JSONDecodeError:
            context[key] = raw
    return context


@magics_class
class CloacaMagics(Magics):
    """``%cloaca_dag``, ``%cloaca_run``, ``%cloaca_build`` and ``%cloaca_tasks``."""

    @property
    def user_ns(self) -> dict[str, Any]:
        assert self.shell is not None
        return self.shell.user_ns

    @property
    def kit(self) -> Any:
        from cloaca_nb.hooks import current

        return current()

    @magic_arguments()
    @argument("--svg", metavar="PATH", help="also write the drawing as SVG to PATH")
    @argument(
        "--renderer",
        choices=["auto", "dot", "python"],
        default=None,
        help="auto: graphviz dot when installed, else the built-in layout",
    )
    @argument("--no-display", action="store_true", help="do not display the widget")
    @line_magic
    def cloaca_dag(self, line: str) -> Any:
        """Show the session DAG as a live widget (tasks, edges, cells, problems)."""
        args = parse_argstring(self.cloaca_dag, line)
        if args.renderer:
            self.kit.renderer = args.renderer
        widget = self.kit.dag_widget(args.renderer)
        if args.svg:
            widget.save_svg(args.svg)
        return None if args.no_display else widget

    @magic_arguments()
    @argument(
        "-p",
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="initial context entry; VALUE is JSON (falls back to a string)",
    )
    @argument("--context-file", metavar="PATH", help="JSON object with the initial context")
    @argument("--from", dest="start_from", metavar="TASK", help="run TASK and what follows it")
    @argument("--only", nargs="+", metavar="TASK", help="run exactly these tasks")
    @argument("--until", metavar="TASK", help="run TASK and what it depends on")
    @argument("--out", metavar="NAME", help="also store the result in the variable NAME")
    @argument("--raise", dest="raise_", action="store_true", help="raise when a task fails")
    @argument("--no-widget", action="store_true", help="do not show the live DAG widget")
    @argument("--max-concurrency", type=int, default=4, help="tasks running at once")
    @argument(
        "--no-retry", action="store_true", help="one attempt per task, whatever its retry policy"
    )
    @argument(
        "--dask", metavar="ADDRESS", help="run the tasks on this Dask cluster (tcp://host:8786)"
    )
    @argument(
        "--server",
        nargs="?",
        const="",
        metavar="PROFILE|URL",
        help="build, upload and run on a cloacina-server (a profile, a URL, or the default)",
    )
    @argument("--api-key", metavar="KEY", help="server: API key (raw, env:VAR or file:PATH)")
    @argument("--tenant", help="server: tenant (default: the profile's, else public)")
    @argument("--name", help="server: package and workflow name (default notebook-tasks)")
    @argument("--isolated", action="store_true", help="run in a fresh kernel via papermill")
    @argument("--kernel", metavar="NAME", help="isolated: kernel name (default python3)")
    @argument("--timeout", type=float, metavar="SECONDS", help="isolated: per-cell timeout")
    @argument("--report", metavar="PATH", help="isolated: render the executed notebook to HTML")
    @argument("--workdir", metavar="DIR", help="isolated: where notebooks are written")
    @argument(
        "--spare",
        action="store_true",
        help="isolated: use (and replace) a spare kernel started in the background",
    )
    @line_magic
    def cloaca_run(self, line: str) -> Any:
        """Run the session workflow in-kernel (default), in a fresh kernel (``--isolated``) or
        on a server (``--server``)."""
        args = parse_argstring(self.cloaca_run, line)
        context = parse_params(args.param, args.context_file)
        select = {"start_from": args.start_from, "only": args.only, "until": args.until}
        if args.no_retry and (args.server is not None or args.isolated):
            from IPython.core.error import UsageError

            raise UsageError("--no-retry applies to in-kernel and --dask runs only")
        if args.server is not None:
            result = self._run_on_server(args, context, select)
        elif args.isolated:
            from cloaca_nb.isolated import run_isolated_session

            result = run_isolated_session(
                self.kit,
                context,
                kernel_name=args.kernel,
                timeout=args.timeout,
                report=args.report,
                workdir=args.workdir,
                spare=args.spare,
                out=(self.user_ns, args.out),
                **select,
            )
        else:
            with self._executor(args.dask) as executor:
                result = self.kit.run(
                    context,
                    show=not args.no_widget,
                    max_concurrency=args.max_concurrency,
                    caller=executor,
                    retries=not args.no_retry,
                    **select,
                )
        if args.out:
            self.user_ns[args.out] = result
        if args.raise_:
            result.raise_for_status()
        return result

    @staticmethod
    def _executor(dask: str | None) -> AbstractContextManager[Any]:
        """The Dask executor of ``--dask ADDRESS`` (closed after the run), else None: in-kernel."""
        if not dask:
            return nullcontext()
        from cloaca.execution.executors.dask import DaskExecutor

        return DaskExecutor(dask)

    def _run_on_server(self, args: Any, context: dict[str, Any], select: dict[str, Any]) -> Any:
        from IPython.core.error import UsageError

        from cloaca_nb.errors import ServerRunError
        from cloaca_nb.server_run import run_on_server

        if args.isolated or args.dask or any(select.values()):
            raise UsageError("--server runs the whole workflow: drop --isolated/--dask/selection")
        try:
            return run_on_server(
                self.kit,
                context,
                server=args.server,
                api_key=args.api_key,
                tenant=args.tenant,
                name=args.name,
                show=not args.no_widget,
            )
        except ServerRunError as exc:
            raise UsageError(str(exc)) from None

    @magic_arguments()
    @argument("-o", "--out-dir", default="dist", metavar="DIR", help="where archives go")
    @argument("--target", action="append", metavar="T", help="target platform (repeatable)")
    @argument("--name", help="package name (default notebook-tasks)")
    @argument("--version", help="package version (default 0.1.0)")
    @argument("--module", help="Python package the tasks go in (default from the name)")
    @argument("--project-dir", metavar="DIR", help="keep the generated project in DIR")
    @argument("--python", action="append", metavar="X.Y", help="Python (default the kernel's)")
    @argument(
        "--server",
        nargs="?",
        const="",
        metavar="PROFILE|URL",
        help="also build for every Python this cloacina-server runs (a profile, a URL, or the "
        "default)",
    )
    @line_magic
    def cloaca_build(self, line: str) -> Any:
        """Export the session's tasks (and the code they need) as ``.cloaca`` packages."""
        args = parse_argstring(self.cloaca_build, line)
        from cloaca_nb.export import build_session

        pythons = list(args.python or ())
        if args.server is not None:
            from IPython.core.error import UsageError

            from cloaca_nb.errors import ServerRunError
            from cloaca_nb.server_run import pythons_of

            try:
                pythons += pythons_of(args.server)
            except ServerRunError as exc:
                raise UsageError(str(exc)) from None

        return build_session(
            self.kit.session,
            out_dir=args.out_dir,
            targets=args.target,
            name=args.name,
            version=args.version,
            module=args.module,
            project_dir=args.project_dir,
            python_versions=list(dict.fromkeys(pythons)) or None,
        )

    @magic_arguments()
    @argument("--forget", metavar="TASK", help="drop TASK (e.g. its cell was deleted)")
    @argument("--reset", action="store_true", help="forget every task")
    @line_magic
    def cloaca_tasks(self, line: str) -> Any:
        """List the session's tasks and the cells that define them."""
        args = parse_argstring(self.cloaca_tasks, line)
        session = self.kit.session
        if args.reset:
            session.reset()
        if args.forget and not session.forget(args.forget):
            print(f"no task {args.forget!r} in the session", file=sys.stderr)
        from cloaca_nb.session import describe_cells

        return describe_cells(session)
