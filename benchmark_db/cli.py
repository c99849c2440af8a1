"""Options every script shares, and the wrapper that turns errors into one line and an exit code.

`--db` (aliases `--db-path`, `--output-db`), `--format`, `--output`, `--quiet`, `--verbose` and
`--lock-timeout` mean the same in every tool. `run_cli(parser, run, argv)` parses, sets up logging to stderr
and calls `run(args)`; a `BenchmarkDBError` becomes `error DB00N: ...; ...` on stderr and its exit code,
with the traceback only under `--verbose`.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterable

from benchmark_db.connection import DEFAULT_LOCK_TIMEOUT
from benchmark_db.errors import EXIT_USAGE, BenchmarkDBError, UsageError, is_interrupt

FORMATS = ("table", "json", "csv", "markdown", "html")
log = logging.getLogger("benchmark_db")


class _DataPathAction(argparse.Action):
    """--data-path tells the connection helper where a DuckLake keeps its Parquet files."""

    def __call__(self, parser, namespace, values, option_string=None):
        from benchmark_db.connection import set_default_data_path

        set_default_data_path(values)
        setattr(namespace, self.dest, values)


def add_db_option(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    parser.add_argument(
        "--db", "--db-path", "--output-db", dest="db", metavar="PATH", default=None,
        help=help_text or "database file (default: $BENCHMARK_DB_PATH, else ./benchmark_db.duckdb), or a "
                          "DuckLake: ducklake:postgres:'dbname=... host=...' / ducklake:PATH.ducklake")
    add_data_path_option(parser)


def add_data_path_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-path", action=_DataPathAction, metavar="DIR_OR_URL", default=None,
                        help="team mode: where the DuckLake keeps its Parquet data "
                             "(default: $BENCHMARK_DB_DATA_PATH)")


def positive_int(text: str) -> int:
    """argparse type of counts such as --parallel and --batch-size: 0 or -3 is a typo, not a request for one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type of amounts such as --lock-timeout and --tolerance: a finite number, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, not {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type of limits such as --query-timeout: a finite number above 0 (0 or nan is no limit at all)."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be above 0, not 0")
    return value


def add_common_options(parser: argparse.ArgumentParser, *, database: bool = True) -> None:
    """--quiet, --verbose and (for a tool that opens a database) --lock-timeout."""
    group = parser.add_argument_group("common options")
    group.add_argument("--quiet", "-q", action="store_true", help="no progress bars or info messages")
    group.add_argument("--verbose", "-v", action="store_true", help="debug messages and tracebacks")
    if not database:
        return
    group.add_argument("--lock-timeout", type=non_negative_float, default=DEFAULT_LOCK_TIMEOUT, metavar="SECONDS",
                       help="how long to wait for a database another process holds (default: %(default)s)")


def add_archive_option(parser: argparse.ArgumentParser) -> None:
    """--allow-missing-archive, for the tools that read results (see connect(missing_archive=...))."""
    parser.add_argument("--allow-missing-archive", action="store_true",
                        help="answer from the rows still in the database when archived Parquet files are missing "
                             "(a warning; without it: error DB004, exit 2)")


def missing_archive_mode(args: argparse.Namespace) -> str:
    """connect()'s `missing_archive` for a tool with --allow-missing-archive."""
    return "warn" if args.allow_missing_archive else "error"


def add_format_option(parser: argparse.ArgumentParser, formats: Iterable[str] = FORMATS, *,
                      from_output: bool = True) -> None:
    """--format; `from_output=False` for a tool whose --output is no report (create_benchmark_schema.py's is the
    database)."""
    default = "from --output's extension, else " if from_output else ""
    parser.add_argument("--format", choices=tuple(formats), default=None,
                        help=f"output format (default: {default}table on a terminal and csv otherwise)")


def add_output_options(parser: argparse.ArgumentParser, formats: Iterable[str] = FORMATS,
                       output_help: str = "write to FILE instead of stdout") -> None:
    add_format_option(parser, formats)
    parser.add_argument("--output", "-o", metavar="FILE", default=None, help=output_help)
    parser.set_defaults(output_formats=tuple(formats))  # what --output's extension may imply (resolve_format)


def resolve_format(fmt: str | None, output: str | None = None, formats: Iterable[str] | None = None,
                   default: str | None = None) -> str:
    """The format asked for, else the one --output's extension names, else `default`, else the terminal
    default (a text table on a terminal, CSV when piped).

    `formats`: the ones the tool writes (`args.output_formats`). An --output whose extension names another
    format is a usage error unless --format says what to write: `x.yaml` used to get CSV under a name that
    promised YAML, and `summary.html` of a tool without HTML two HTML documents back to back. A name that
    names no format (`run.log`, `summary.out`, no extension) gets the default."""
    if fmt:
        return fmt
    if output:
        name = output.replace("\\", "/").rsplit("/", 1)[-1]
        suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        implied = _FORMAT_OF_SUFFIX.get(suffix)
        allowed = tuple(formats) if formats is not None else tuple(_EXTENSION)
        if (implied and implied not in allowed) or suffix in _OTHER_FORMATS:
            from benchmark_db.errors import UsageError

            raise UsageError(f"--output {output}: this tool does not write {implied or suffix.upper()}",
                             f"end it with .{', .'.join(_EXTENSION[f] for f in allowed)} or pass --format")
        if implied:
            return implied
    return default or ("table" if sys.stdout.isatty() else "csv")


_FORMAT_OF_SUFFIX = {"json": "json", "csv": "csv", "md": "markdown", "markdown": "markdown", "html": "html",
                     "htm": "html", "txt": "table"}
_EXTENSION = {"json": "json", "csv": "csv", "markdown": "md", "html": "html", "table": "txt"}
# extensions of formats no tool here writes as text output
_OTHER_FORMATS = frozenset({"yaml", "yml", "xml", "toml", "tsv", "xls", "xlsx", "ods", "parquet", "arrow",
                            "feather", "duckdb", "db", "sqlite", "pdf", "png", "svg", "jpg", "jpeg", "zip", "gz"})


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("benchmark_db")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def show_progress(quiet: bool = False) -> bool:
    """Progress bars only for a person watching a terminal."""
    return not quiet and sys.stderr.isatty()


def progress(iterable, *, total: int | None = None, desc: str = "", quiet: bool = False, unit: str = "it"):
    """A tqdm bar on stderr that stays silent off a terminal or with --quiet."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=not show_progress(quiet),
                dynamic_ncols=True, leave=False)


def make_writable_folder(folder, option: str) -> None:
    """Create `folder` (given as `option`, e.g. --parquet-dir) or say in one line why it cannot be used. Called
    before the work whose results go there: a file in the way or a read-only folder would otherwise lose a
    whole run at its very end."""
    import os
    from pathlib import Path

    from benchmark_db.errors import UsageError

    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {folder} is a file, not a folder", "pass a folder path (it is created)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {option} {folder}: {exc.strerror or exc}",
                         "pass a folder you can write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder} is not writable", "pass a folder you can write to")


def write_text(text: str, output: str | None) -> None:
    """Data goes to stdout, or to --output."""
    if output:
        from pathlib import Path


        path = Path(output)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            raise unwritable_output(output, exc) from exc
        log.info("wrote %s", path)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


def unwritable_output(path, exc: OSError, hint: str = "pass --output a path in a writable folder"):
    """The one DB000 error of every tool for an output file it cannot write (a missing or read-only folder,
    a file where a folder should be)."""
    from benchmark_db.errors import UsageError

    return UsageError(f"cannot write {path}: {exc.strerror or exc}", hint)


def _one_line_usage_errors(parser: argparse.ArgumentParser) -> None:
    """argparse's own errors (an unknown option, a missing value) in the toolkit's one-line form, exit 2,
    instead of the usage block followed by `prog: error: ...`."""
    def error(message: str):
        print(f"error DB000: {message}; see {parser.prog} --help", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)

    parser.error = error
    for action in parser._actions:  # sub-commands have parsers of their own
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _one_line_usage_errors(sub)


def run_cli(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int | None],
            argv: list[str] | None = None) -> int:
    """Parse `argv`, call `run(args)` and return its exit code; errors become one line on stderr."""
    _one_line_usage_errors(parser)
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    setup_logging(verbose, getattr(args, "quiet", False))
    try:
        _refuse_empty_values(parser, args, sys.argv[1:] if argv is None else list(argv))
        if getattr(args, "output", None) and hasattr(args, "output_formats"):
            # an --output whose extension names a format the tool does not write fails before any work
            resolve_format(getattr(args, "format", None), args.output, args.output_formats)
            _check_output_file(args.output)
        code = run(args)
        return 0 if code is None else int(code)
    except BenchmarkDBError as exc:
        if verbose:
            _print_traceback()
        print(" ".join(line.strip() for line in str(exc).splitlines() if line.strip()), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug, not a user mistake: one line unless --verbose
        if is_interrupt(exc):  # Ctrl-C that DuckDB caught inside a query
            return _interrupted()
        if verbose:
            _print_traceback()
        print(f"error: unexpected {type(exc).__name__}: {_redact(' '.join(str(exc).split()))}; re-run with --verbose for the traceback "
              "and report it", file=sys.stderr)
        return EXIT_USAGE


def _refuse_empty_values(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str]) -> None:
    """DB000 for an option or argument given an empty value (an unset shell variable, `--db "$DB"`). Read as
    "not given" it meant something else: `--db ""` fell back to the default database, which
    `create_benchmark_schema.py --force` then recreated empty; `--input-dir ""` ingested the current folder;
    `--hardware ""` dropped the filter and reported every result."""
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if value is None or value == action.default:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(item, str) and not item.strip() for item in values):
            if not action.option_strings:
                raise UsageError(f"an empty {action.metavar or action.dest} argument", "pass a path or name")
            # the spelling the user typed (--output, not its alias --output-db)
            typed = [word.split("=", 1)[0] for word in map(str, argv) if word.startswith("-")]
            name = next((o for o in action.option_strings if o in typed), action.option_strings[-1])
            raise UsageError(f"{name} is empty", f"pass {name} a value, or leave it out")


def refuse_unused_options(parser: argparse.ArgumentParser, args: argparse.Namespace,
                          readers: dict[str, tuple[str, ...]], chosen: Iterable[str]) -> None:
    """DB000 for an option given (set to other than its default) that none of the `chosen` steps reads.
    `readers` maps an option (`--older-than`) to the steps that read it. Passed over in silence, such an option
    hid a mistake: `--validate --action archive` made an empty archive folder and moved nothing,
    `--optimize-db --older-than 5` read as if rows older than 5 days were dealt with."""
    chosen = set(chosen)
    for option, steps in readers.items():
        dest = option.lstrip("-").replace("-", "_")
        if chosen.intersection(steps) or getattr(args, dest, None) == parser.get_default(dest):
            continue
        names = [f"--{step}" for step in steps]
        readers_text = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise UsageError(f"{option} is read only by {readers_text}, not by this run",
                         f"leave {option} out, or add the step that uses it")


def _redact(text: str) -> str:
    from benchmark_db.lake import redact  # imported here: the CLI's start-up stays free of the lake's imports

    return redact(text)


def _print_traceback() -> None:
    """--verbose's traceback, without the catalog password a connection string in it may carry."""
    print(_redact(traceback.format_exc()), end="", file=sys.stderr)


def _check_output_file(output: str) -> None:
    """An --output that names a folder fails before the work, not after it (an ingest stored its rows, then
    exited 2 as if it had failed)."""
    from pathlib import Path

    if Path(output).is_dir():
        raise UsageError(f"--output {output} is a folder", "pass a file path, e.g. summary.json")
    # nor one it cannot write: a file where a folder should be, or a read-only folder (the ingest had committed
    # its rows, then said "error DB000: cannot write ...: File exists" as if nothing had happened)
    folder = Path(output).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {output}: {folder} is a file, not a folder",
                         "pass --output a path in a writable folder")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {output}: the folder {folder} is not writable",
                         "pass --output a path in a writable folder")


def _interrupted() -> int:
    print("error: interrupted; committed work is kept and a re-run continues from there", file=sys.stderr)
    return 130
