"""The ingest engine: input files -> converted records, ingest log and original text, committed together.

It walks the inputs, reads and hashes each file, skips a file whose content the ingest log already holds at
that path, names a file whose content was ingested under another path a duplicate, and makes a changed file
replace the rows of its earlier version. Reading, conversion, compression and the building of the fact rows
as Arrow tables (`benchmark_db_models.fact_table`) run on chunks of a few dozen files, in `parallel` worker
processes or inline; one writer (this process) decides per file what goes in and commits `batch_size` files
per transaction, on a thread of its own while the next batch is converted: their dimension rows
(`BenchmarkDB.insert_many`), their fact rows (one `BenchmarkDB.insert_table` per table), their
`ingested_files` rows and their compressed originals (`benchmark_db.source_store`) commit together or not at
all. A run killed at any point leaves only whole batches, and the next run, which skips what was committed,
ends with the same database as an uninterrupted one (ids come from natural keys and the shared dictionary is
chosen deterministically). Files are archived or removed only after their rows are committed.

What a document becomes is `benchmark_db.convert`'s business; this module never looks inside one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmark_db import source_store
from benchmark_db.convert import CONVERTER_VERSION
from benchmark_db.errors import UsageError, WorkerDiedError
from benchmark_db.identity import stable_id
from benchmark_db.schema import REMOVED_MARK, RESULT_TABLES, TABLES

log = logging.getLogger("benchmark_db.ingest")

INGESTED, SKIPPED, FAILED = "ingested", "skipped", "failed"
UNCHANGED = "unchanged"  # summary only: the log already holds this content at this path
FILTERED = "filtered"  # summary only: not in the categories asked for; no log row, so a later run takes it
DEFAULT_BATCH_SIZE = 500
DOCUMENT_SUFFIXES = (".json",)
# result directories of the legacy system (the guide's `--consolidate` and `--migrate-all`), relative to cwd
DEFAULT_RESULT_DIRS = (
    "archived_test_results", "performance_results", "benchmark_results", "hardware_test_results",
    "hardware_fix_results", "hardware_compatibility_results", "web_platform_results", "collected_results",
    "critical_model_results", "generation_results", "real_vs_sim_results", "benchmark_comparison",
    "api_check_results", "integration_test_results", "test_benchmark_database", "apis", "skills", "test_data",
)
ACTIONS = ("archive", "remove")

Converter = Callable[[bytes, str, str], object]


def run_id_for_source(sha256: str) -> int:
    """The run id the converter gives the TestRuns record of a document with this content."""
    return stable_id("source", sha256)


# ---------------------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class InputFile:
    path: str  # absolute; the key of the ingest log (always valid UTF-8, see `log_key`)
    rel: str  # relative path kept by --action archive
    source: str | None = None  # the real path when `path` had to escape bytes that are not UTF-8
    source_rel: str | None = None  # ... and the real relative path when `rel` had to

    @property
    def real_path(self) -> str:
        return self.source or self.path

    @property
    def real_rel(self) -> str:
        return self.source_rel or self.rel


def log_key(path: str) -> str:
    """`path` as text the database can store: a file name that is not valid UTF-8 (which Python keeps as
    lone surrogates) gets its stray bytes written as `\\xNN`, so it is logged instead of crashing the run."""
    if path.isascii():
        return path
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def input_file(path: str, rel: str) -> InputFile:
    key, rel_key = log_key(path), log_key(rel)
    return InputFile(key, rel_key, None if key == path else path, None if rel_key == rel else rel)


def _relative(path: Path, root: Path) -> str:
    cwd = Path.cwd()
    for base in (cwd, root.parent if root.is_dir() else root.parent):
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            continue
    return path.name


def is_broken_link(path: Path) -> bool:
    """A symbolic link whose target does not exist, or a loop of links: nothing can be read through it."""
    return path.is_symlink() and not path.exists()


def check_inputs(inputs: Iterable[str | os.PathLike]) -> None:
    """A usage error for the first input that is neither a file nor a folder. The tools call it before they
    open the database, so that a mistyped path neither creates nor upgrades one."""
    for raw in inputs:
        root = Path(os.path.abspath(raw))
        if root.is_file() or root.is_dir():
            continue
        if is_broken_link(root):
            raise UsageError(f"input {raw} is a symbolic link to {os.readlink(root)}, which does not exist "
                             "(or a loop of links)", "pass the path of the file itself")
        if os.path.lexists(root):
            raise UsageError(f"input {raw} is neither a file nor a folder (a pipe, socket or device)",
                             "pass result files or folders of them")
        raise UsageError(f"input {raw} does not exist", "check the path (relative to the current directory)")


def visible_entries(root: Path, suffixes: tuple[str, ...] = DOCUMENT_SUFFIXES,
                    skip: str | None = None) -> list[Path]:
    """Everything under the folder `root` except hidden entries (a name starting with ".": version control,
    caches, editors' files) and the top-level folder `skip` (the updater's processed/). Hidden result files
    are left out with a warning that counts and names them, rather than in silence."""
    entries, hidden = [], []
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if skip is not None and parts[0] == skip:
            continue
        if any(part.startswith(".") for part in parts):
            if path.suffix.lower() in suffixes and path.is_file():
                hidden.append(path)
            continue
        entries.append(path)
    if hidden:
        hidden.sort()
        log.warning("%d hidden file(s) in %s are not read (a name or folder starting with '.'), e.g. %s: pass "
                    "a file with --input-file/--input-files to take it", len(hidden), root, log_key(str(hidden[0])))
    return entries


def warn_unread_entries(entries: list[Path], suffixes: tuple[str, ...] = DOCUMENT_SUFFIXES) -> None:
    """Say which entries of a folder walk are not read, rather than pass them over in silence: symbolic links
    to folders (the walk does not enter them: a loop, or --action moving files out of a folder that is not an
    input), and entries named like a result file that are not files (a named pipe would block the reader)."""
    for path in entries:
        if path.is_symlink() and path.is_dir():
            log.warning("%s is a symbolic link to a folder; its files are not read: pass it (or %s) as an "
                        "input of its own to take them", path, log_key(os.path.realpath(path)))
        elif path.suffix.lower() in suffixes and path.exists() and not path.is_file() and not path.is_dir():
            log.warning("%s is not read: it is a pipe, socket or device, not a file", path)


def discover_files(inputs: Iterable[str | os.PathLike], suffixes: tuple[str, ...] = DOCUMENT_SUFFIXES,
                   missing_ok: bool = False) -> list[InputFile]:
    """Every document file under `inputs` (files or directories), once each, in a stable order."""
    seen: dict[str, InputFile] = {}
    inputs, missing = list(inputs), 0
    for raw in inputs:
        root = Path(os.path.abspath(raw))
        if root.is_file():
            found = [root]
        elif root.is_dir():
            # a broken symbolic link (dangling, or a loop) is listed too: it fails with its reason, rather
            # than vanishing from the ingest log
            entries = visible_entries(root, suffixes)
            found = sorted(p for p in entries if p.suffix.lower() in suffixes and (p.is_file() or is_broken_link(p)))
            warn_unread_entries(entries, suffixes)
        elif missing_ok:
            log.info("%s does not exist; nothing to ingest there", raw)
            missing += 1
            continue
        else:
            check_inputs([raw])
        for path in found:
            key = str(path)
            if key not in seen:
                seen[key] = input_file(key, _relative(path, root))
    if inputs and missing == len(inputs):  # run from the wrong folder: not the same as "nothing new there"
        log.warning("none of the %d default result directories (listed in --help) exists in %s: run from the "
                    "folder that holds them", missing, os.getcwd())
    return sorted(seen.values(), key=lambda f: f.path)


# ---------------------------------------------------------------------------------------------------------
# Results


# the log reason of a file that fails now but converted before: the earlier content's rows stay (see _keep_earlier)
KEPT_NOTE = "its earlier rows are kept"


@dataclass
class FileOutcome:
    path: str
    status: str  # ingested | skipped | failed | unchanged | filtered
    sha256: str | None = None
    size_bytes: int | None = None
    kind: str | None = None
    reason: str | None = None
    rows_by_table: dict[str, int] = field(default_factory=dict)
    conversions: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    archived_to: str | None = None
    removed: bool = False

    @property
    def rows(self) -> int:
        return sum(self.rows_by_table.values())

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["rows"] = self.rows
        return data


@dataclass
class IngestSummary:
    outcomes: list[FileOutcome] = field(default_factory=list)
    dry_run: bool = False
    table_rows: dict[str, int] = field(default_factory=dict)  # rows per table after the run
    rows_before: dict[str, int] = field(default_factory=dict)  # ... and before it (a run that writes)
    nothing_note: str = "(no files found)"  # what the summary says when there were no files
    # a dry run: the ids of the models and hardware platforms its files name that the database lacks (many
    # files name one model: counted per file, the dry run said 439 models where the real run added 78)
    new_dimension_ids: dict[str, set] = field(default_factory=dict)
    # a dry run: the stored rows its changed, moved or re-converted files would replace (a real run deletes
    # them first; counted as added only, a --scan-dir dry run said +76 results where the real run added 0)
    rows_replaced: dict[str, int] = field(default_factory=dict)
    # a dry run: the ingest log rows and stored originals its files would add (a real run counts them after)
    bookkeeping_added: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    def by_kind(self) -> list[dict]:
        """Files per kind and status: the summary table at the end of a run."""
        counts: dict[str, Counter] = {}
        for o in self.outcomes:
            counts.setdefault(o.kind or "-", Counter())[o.status] += 1
        rows = []
        for kind in sorted(counts):
            c = counts[kind]
            rows.append({"kind": kind, "files": sum(c.values()), INGESTED: c[INGESTED], SKIPPED: c[SKIPPED],
                         FAILED: c[FAILED], UNCHANGED: c[UNCHANGED], FILTERED: c[FILTERED]})
        return rows

    def rows_added(self) -> dict[str, int]:
        """Rows each table gained in the run (after minus before: a model or platform that many files name
        counts once, and the ingest log and originals count too); for a dry run, the rows the files would
        write."""
        if self.rows_before and self.table_rows:
            return {t: n - self.rows_before.get(t, 0) for t, n in sorted(self.table_rows.items())
                    if n != self.rows_before.get(t, 0)}
        total: Counter = Counter()
        for o in self.outcomes:
            if o.status == INGESTED:
                total.update(o.rows_by_table)
        total.subtract(self.rows_replaced)
        total.update(self.bookkeeping_added)
        for table, ids in self.new_dimension_ids.items():
            total[table] = len(ids)
        return dict(sorted((t, n) for t, n in total.items() if n))

    def totals(self) -> dict:
        return {"files": len(self.outcomes), **{s: self.count(s) for s in
                                                (INGESTED, SKIPPED, FAILED, UNCHANGED, FILTERED)}}

    def as_dict(self, with_files: bool = True) -> dict:
        data = {"dry_run": self.dry_run, "totals": self.totals(), "by_kind": self.by_kind(),
                "rows_added": self.rows_added(), "table_rows": self.table_rows}
        if with_files:
            data["files"] = [o.as_dict() for o in self.outcomes]
        return data


# ---------------------------------------------------------------------------------------------------------
# The worker side: read, hash, convert, compress. Runs in worker processes (or inline for parallel=1).


@dataclass
class _Prepared:
    file: InputFile
    sha256: str | None = None
    size: int | None = None
    unchanged: bool = False
    conversion: object | None = None  # its records: the dimension rows only; fact rows are in the chunk's tables
    compressed: bytes | None = None
    error: str | None = None
    rows_by_table: dict[str, int] = field(default_factory=dict)


@dataclass
class _Chunk:
    """A few dozen prepared files and their fact rows as one Arrow table per table (column `_file`: the
    index of the row's file in `files`). Arrow tables cross the process boundary as flat buffers, where
    pickled record objects cost the writer more to unpickle than the workers saved it."""
    files: list[_Prepared]
    facts: dict[str, object] = field(default_factory=dict)  # table name -> pyarrow.Table


class _WorkerState:
    converter: Converter | None = None
    known: dict[str, str] = {}
    compressor: source_store.Compressor | None = None
    force: bool = False
    fact_columns: dict[str, list[tuple[str, str]]] | None = None  # table -> (column, type); None: no tables


def default_converter() -> Converter:
    from benchmark_db.convert import convert_document

    return convert_document


# Conversion allocates millions of short-lived objects that hold no reference cycles; CPython's default
# (a young-generation collection every 700 allocations) spent 8% of an ingest collecting them. The ingest
# collects 70 times less often (1.1 s -> 0.25 s of 14 s for 20,000 files).
_BULK_GC_THRESHOLD = 50_000


@contextlib.contextmanager
def _fewer_collections():
    previous = gc.get_threshold()
    gc.set_threshold(_BULK_GC_THRESHOLD, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def _init_worker(converter, known, dictionary, force, compress, fact_columns) -> None:
    _WorkerState.converter = converter or default_converter()
    _WorkerState.known = known
    _WorkerState.compressor = source_store.Compressor(dictionary) if compress else None
    _WorkerState.force = force
    _WorkerState.fact_columns = fact_columns


def _init_worker_process(*initargs) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (see deferred_interrupts)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked since the spawn: see _start_pool
    gc.set_threshold(_BULK_GC_THRESHOLD, *gc.get_threshold()[1:])  # the process does nothing but bulk work
    _init_worker(*initargs)


def _prepare(file: InputFile) -> _Prepared:
    try:
        with open(file.real_path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return _Prepared(file, error=_unreadable(file.real_path, exc))
    sha = hashlib.sha256(data).hexdigest()
    if not _WorkerState.force and _WorkerState.known.get(file.path) == sha:
        return _Prepared(file, sha, len(data), unchanged=True)
    conversion = _WorkerState.converter(data, file.path, sha)
    compressed = _WorkerState.compressor.compress(data) if _WorkerState.compressor else None
    prepared = _Prepared(file, sha, len(data), conversion=conversion, compressed=compressed)
    if getattr(conversion, "status", None) == INGESTED:
        prepared.rows_by_table = conversion.rows_by_table()
    return prepared


def _unreadable(path: str, exc: OSError) -> str:
    why = exc.strerror or str(exc)
    if os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        why = f"it is a symbolic link to {log_key(target)}, which cannot be read ({why})"
    elif os.path.isdir(path):
        why = "it is a folder now"
    return f"cannot read the file: {why}"


def _prepare_chunk(files: list[InputFile]) -> _Chunk:
    """Prepare files and move the fact records of the ingested ones into Arrow tables."""
    chunk = _Chunk([_prepare(f) for f in files])
    dry_run = _WorkerState.fact_columns is None  # the records stay as they are, nothing is written
    facts: dict[str, list] = {}  # table -> [(file index, record)]
    unstorable: dict[int, str] = {}  # file index -> why its rows cannot be stored
    for index, prepared in enumerate(chunk.files):
        conversion = prepared.conversion
        if not prepared.rows_by_table:
            continue
        dimensions = []
        for record in conversion.records:
            if record.TABLE not in RESULT_TABLES:
                dimensions.append(record)
            elif not dry_run:
                facts.setdefault(record.TABLE, []).append((index, record))
        if not dry_run:  # the facts go as Arrow tables
            conversion.records = dimensions
        # the writer inserts the dimension rows of a whole batch at once: a value of the wrong type (a reader
        # passing a number where text belongs) would fail that insert, and so every run, for every file of it
        # (a dry run says so too: its file fails as the real run's would)
        why = _unstorable_dimension(dimensions)
        if why:
            unstorable[index] = why
    # a row whose document gives no time keeps created_at NULL: the time of this ingest is not when it was
    # measured, and would put years-old results into every "last N days" window and trend
    now = None
    for table, rows in facts.items():
        try:
            built = _fact_table(table, rows, now)
        except Exception:  # noqa: BLE001 - some file's rows cannot be stored: find it, keep the others
            parts = []
            for index in sorted({i for i, _ in rows} - set(unstorable)):
                try:
                    parts.append(_fact_table(table, [row for row in rows if row[0] == index], now))
                except RecursionError:  # json.dumps of a field ~990 levels deep (the reader took up to ~1000)
                    unstorable[index] = (f"a row of {table} cannot be stored: a JSON field (metrics, metadata) is "
                                         "nested too deeply to write")
                except Exception as exc:  # noqa: BLE001
                    unstorable[index] = f"a row of {table} cannot be stored: {type(exc).__name__}: {exc}"[:500]
            built = _concat(parts) if parts else None
        if built is not None:
            chunk.facts[table] = built
    if unstorable:
        for index, reason in unstorable.items():
            prepared = chunk.files[index]
            prepared.conversion.status, prepared.conversion.reason = FAILED, reason
            prepared.conversion.records, prepared.rows_by_table = [], {}
        kept = [i for i in range(len(chunk.files)) if i not in unstorable]
        chunk.facts = {t: _only_files(v, kept) for t, v in chunk.facts.items()}
    return chunk


_DIMENSION_TABLES = {"models": "model_id", "hardware_platforms": "hardware_id"}
_STORABLE = {"str": (str,), "float": (int, float), "int": (int,), "bool": (bool, int)}
_field_checks: dict[type, list[tuple[str, tuple, str]]] = {}


def _unstorable_dimension(records: list) -> str | None:
    """Why one of these dimension records (models, hardware, the run) cannot be inserted, or None."""
    from benchmark_db_models import bad_text

    for record in records:
        checks = _field_checks.get(type(record))
        if checks is None:
            checks = _field_checks[type(record)] = [
                (f.name, _STORABLE[base], base) for f in dataclasses.fields(record)
                if isinstance(f.type, str) and (base := f.type.replace("| None", "").strip()) in _STORABLE]
        for name, types, base in checks:
            value = getattr(record, name)
            if value is not None and not isinstance(value, types):
                return (f"a row of {record.TABLE} cannot be stored: its {name} is {type(value).__name__} "
                        f"{repr(value)[:60]}, not {base}")
            # the ORM refuses a NUL in a name (`{"model_name": "x\u0000y"}`): found at the batch's insert, it
            # failed every file of the batch, and every later run the same way
            refused = bad_text(name, value) if base == "str" else None
            if refused is not None:
                return f"a row of {record.TABLE} cannot be stored: its {refused.message}"
    return None


def _fact_table(table: str, rows: list, now):
    import pyarrow as pa

    from benchmark_db_models import RECORD_TYPE_BY_TABLE, fact_table

    indexes = pa.array([index for index, _ in rows], pa.int32())
    return fact_table(RECORD_TYPE_BY_TABLE[table], [record for _, record in rows],
                      _WorkerState.fact_columns[table], now, extra={"_file": indexes})


def _concat(tables: list):
    import pyarrow as pa

    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _only_files(table, indexes: list[int]):
    """The rows of a chunk's table that belong to these files."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return table.filter(pc.is_in(table.column("_file"), value_set=pa.array(indexes, pa.int32())))


def _chunk_stream(files: list[InputFile], parallel: int, initargs: tuple, chunk_files: int = 48,
                  window: int = 16) -> Iterator[_Chunk]:
    chunks = [files[i:i + chunk_files] for i in range(0, len(files), chunk_files)]
    if parallel <= 1 or len(chunks) < 2:
        _init_worker(*initargs)
        for part in chunks:
            yield _prepare_chunk(part)
        return
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    # no more workers than chunks to give them, nor many more than the machine has cores: each is a spawned
    # interpreter that imports the converter, so `--parallel 1000` must not start a thousand of them
    parallel = min(parallel, len(chunks), 4 * (os.cpu_count() or 1))
    # spawn, not fork: the parent holds DuckDB's threads, and forking a threaded process can deadlock.
    # A process pool executor, not multiprocessing.Pool: when a worker dies (the OOM killer, a crash in a
    # native library) Pool starts another and waits for the lost chunk forever; the executor says so.
    pool = _start_pool(multiprocessing.get_context("spawn"), parallel, initargs)
    try:
        # a bounded window in flight: workers faster than the writer must not pile results up in memory
        for start in range(0, len(chunks), window * parallel):
            part = chunks[start:start + window * parallel]
            try:
                yield from pool.map(_prepare_chunk, part)
            except BrokenProcessPool:
                raise WorkerDiedError(
                    f"a worker process died while converting files (killed by the system, out of memory?) "
                    f"among {part[0][0].path} ... {part[-1][-1].path}; the files committed before it are "
                    "stored", "re-run the same command to go on; with --parallel 1 the conversion runs in this "
                    "process, where a file that crashes it can be found") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_TRACKER_LEAK_WARNING = "ignore:resource_tracker:UserWarning"


def _start_pool(ctx, parallel: int, initargs: tuple):
    """A pool of workers that never see a Ctrl-C. The initializer ignores SIGINT, but it runs only once the
    spawned interpreter has imported the converter, and a Ctrl-C before that printed a KeyboardInterrupt
    traceback per worker. So SIGINT is blocked while the pool starts: the mask is inherited through fork and
    exec, the initializer ignores the signal and then unblocks it (dropping one that came in between), and the
    parent's own pending Ctrl-C is delivered as soon as its mask is restored: none is lost."""
    import signal
    import sys

    # After a second Ctrl-C (a hard stop) multiprocessing's resource tracker removes the pool's semaphores,
    # as it should, and then warns about them on the terminal. It inherits the interpreter's -W options when
    # this pool starts it: this one silences only that message.
    if _TRACKER_LEAK_WARNING not in sys.warnoptions:
        sys.warnoptions.append(_TRACKER_LEAK_WARNING)
    # started now, before SIGINT is blocked: starting it unblocks SIGINT again when done (its own guard)
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    from concurrent.futures import ProcessPoolExecutor

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pool = ProcessPoolExecutor(parallel, mp_context=ctx, initializer=_init_worker_process, initargs=initargs)
        # the executor spawns a worker per task submitted while none is idle (in this thread, as the call
        # returns): start them all now, while SIGINT is blocked
        for _ in range(parallel):
            pool.submit(_started)
        return pool
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _started() -> None:
    """A worker's first task: none (see _start_pool)."""


# ---------------------------------------------------------------------------------------------------------
# The writer side


def _fold_dimensions(records: list) -> list:
    """Merge repeated dimension rows of one batch the way consecutive inserts would (a later non-null
    attribute wins, a null never blanks a known one), so the result does not depend on batch boundaries."""
    from benchmark_db_models import HardwarePlatforms, Models

    out, merged, copied = [], {}, set()
    for record in records:
        cls = type(record)
        if cls is not Models and cls is not HardwarePlatforms:
            out.append(record)
            continue
        key = (cls, getattr(record, cls.ID) or record.natural_id())
        index = merged.get(key)
        if index is None:
            merged[key] = len(out)
            out.append(record)
            continue
        if key not in copied:  # never change the converter's own objects: merge into a copy
            out[index] = dataclasses.replace(out[index])
            copied.add(key)
        first = out[index]
        for name in _field_names(cls):
            value = getattr(record, name)
            if value is not None:
                setattr(first, name, value)
    return out


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls) -> tuple[str, ...]:
    if cls not in _FIELD_NAMES:
        _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return _FIELD_NAMES[cls]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class _Interrupt:
    def __init__(self):
        self.requested = False


_active_interrupt: _Interrupt | None = None


@contextlib.contextmanager
def deferred_interrupts():
    """Ctrl-C (SIGINT) inside this block asks the ingest to stop between chunks, where nothing is half done.

    A KeyboardInterrupt raised at an arbitrary point is unsafe here: inside an import it can leave that
    module's import lock held (CPython) while the writer thread imports the same module, and the run then
    hangs for ever; inside a DuckDB call it surfaces as DuckDB's own error. So the first Ctrl-C only sets a
    flag, which the ingest loop turns into KeyboardInterrupt (the batch in flight commits or rolls back
    whole); a second Ctrl-C stops the process at once, which is as safe as kill -9. The ingest tools wrap
    their whole `main` in it; `Ingestor` uses it on its own when called from a library."""
    import signal
    import sys
    import threading

    global _active_interrupt
    if _active_interrupt is not None or threading.current_thread() is not threading.main_thread():
        yield _active_interrupt or _Interrupt()
        return
    state = _Interrupt()

    def handler(signum, frame):
        if state.requested:
            sys.stderr.write("error: interrupted again: stopped at once; committed work is kept and a re-run "
                             "continues from there\n")
            _kill_worker_processes()
            os._exit(130)
        state.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    _active_interrupt = state
    try:
        yield state  # a run that finished before anything checked the flag simply finished
    finally:
        _active_interrupt = None
        signal.signal(signal.SIGINT, previous)


def _kill_worker_processes() -> None:
    """SIGKILL the parse workers of `--parallel` before a hard stop. Left running, a worker reading a task
    that the dying parent had half written printed an UnpicklingError traceback."""
    import signal
    import sys

    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return
    try:
        children = multiprocessing.active_children()
    except Exception:  # the pool's own threads may be changing the list: stop without the workers then
        return
    for child in children:
        with contextlib.suppress(OSError):
            os.kill(child.pid, signal.SIGKILL)


class _Batch:
    def __init__(self):
        self.records: list = []  # dimension records (models, hardware platforms)
        self.facts: list[tuple[_Chunk, list[int]]] = []  # chunks and the indexes of their files whose rows go in
        self.log_rows: list[dict] = []
        self.documents: list[dict] = []
        self.replaced: list[str] = []  # old sha256 of changed files
        self.rebuilt: list[str] = []  # sha256 of files converted again with the same content
        self.archive_updates: list[tuple[str, str]] = []  # (path, archived_to) of files committed earlier
        self.moved: list[str] = []  # logged paths that are gone and whose content another path took over
        self.rekeyed: list[tuple[str, str]] = []  # (path, new key) of log rows of archived or removed files whose
        # name a new result took
        # files to archive or remove: (file, its outcome, the real path to archive it to)
        self.after_commit: list[tuple[InputFile, FileOutcome, str | None]] = []

    def __len__(self) -> int:
        return len(self.log_rows) + len(self.archive_updates) + len(self.after_commit) + len(self.moved)


_LOG_COLUMNS = ("path", "sha256", "size_bytes", "kind", "status", "reason", "rows", "rows_by_table",
                "conversions", "ingested_at", "archived_to", "converter_version")


class _BatchWriter:
    """Commits batches on a thread of its own, one at a time, while the caller prepares the next one.

    DuckDB releases the GIL while it executes, so its share of an ingest (inserts, commits: about a fifth of
    the time) overlaps the conversion of the next batch. One batch at most is in flight: memory stays
    bounded, a failed commit stops the run at the next `write`, and leaving the block (also on Ctrl-C)
    waits for the batch in flight to commit or roll back; the connection is used by one thread at a time."""

    def __init__(self, commit: Callable[[_Batch], None]):
        from concurrent.futures import ThreadPoolExecutor

        self._commit = commit
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        self._pending = None

    def write(self, batch: _Batch) -> None:
        self.wait()
        self._pending = self._thread.submit(self._commit, batch)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()  # the commit's own exception, if any, is raised here

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.wait()
            elif self._pending is not None:
                with contextlib.suppress(Exception):  # the error already under way is the one to report
                    self._pending.result()
        finally:
            self._thread.shutdown(wait=True)


class _InlineWriter(_BatchWriter):
    """_BatchWriter's interface, committing in the caller's thread."""

    def __init__(self, commit: Callable[[_Batch], None]):
        self._commit = commit

    def write(self, batch: _Batch) -> None:
        self._commit(batch)

    def wait(self) -> None:
        pass

    def __exit__(self, exc_type, exc, tb) -> None:
        pass


class Ingestor:
    """Ingests files into one database; `ingest(files)` returns an IngestSummary."""

    def __init__(self, db, *, parallel: int = 1, batch_size: int = DEFAULT_BATCH_SIZE, force: bool = False,
                 categories: Iterable[str] | None = None, action: str | None = None,
                 archive_dir: str | os.PathLike | None = None, dry_run: bool = False,
                 converter: Converter | None = None, quiet: bool = True, progress_desc: str = "ingest",
                 on_batch_committed: Callable[[int], None] | None = None):
        if action not in (None, *ACTIONS):
            raise UsageError(f"unknown action {action!r}", "use --action archive or --action remove")
        if action == "archive" and not archive_dir:
            raise UsageError("--action archive needs --archive-dir", "name the folder to move files into")
        self.db = db  # a BenchmarkDB (None for a dry run without a database)
        self.parallel = max(1, int(parallel or 1))
        self.batch_size = max(1, int(batch_size))
        self.force = force
        self.categories = {c.strip().lower() for c in categories or () if c.strip()} or None
        self.action = action
        self.archive_dir = Path(os.path.abspath(archive_dir)) if archive_dir else None
        self.dry_run = dry_run
        self.converter = converter
        # what the log records as the version that made a file's rows: a converter passed in (a test's
        # wrapper, a plug-in) is its own business and says its version itself, if it has one
        self.converter_version = CONVERTER_VERSION if converter is None else getattr(converter, "version", None)
        self.quiet = quiet
        self.progress_desc = progress_desc
        self.on_batch_committed = on_batch_committed
        self.batches_committed = 0

    # -- state of the log --------------------------------------------------------------------------------
    def _load_log(self) -> None:
        self.known: dict[str, tuple[str | None, str]] = {}
        self.content_at: dict[str, str] = {}  # sha256 -> the path whose rows hold that content
        self.archived: set[str] = set()  # logged paths whose file was archived or removed on purpose
        self.duplicate_of: dict[str, str] = {}  # path skipped as a duplicate -> the path that holds its rows
        self.outdated: dict[str, int | None] = {}  # path -> the other converter version that made its rows
        self.archived_as: dict[str, tuple[str, str]] = {}  # logged path -> (its sha256, archived_to)
        self.logged_kind: dict[str, str] = {}  # logged path -> its kind (for the summary of unchanged files)
        self.kept: set[str] = set()  # logged as failed, but the rows of its earlier content stay (_keep_earlier)
        if self.db is None:
            return
        rows = self.db.conn.execute(
            "SELECT path, sha256, status, reason, archived_to, converter_version, kind FROM ingested_files").fetchall()
        for path, sha, status, reason, archived_to, version, kind in rows:
            self.known[path] = (sha, status)
            if kind:
                self.logged_kind[path] = kind
            if version != self.converter_version and sha:
                self.outdated[path] = version
            if archived_to:
                self.archived.add(path)
                self.archived_as[path] = (sha, archived_to)
            if status == FAILED and KEPT_NOTE in (reason or ""):
                self.kept.add(path)
            if (reason or "").startswith("duplicate of "):
                self.duplicate_of[path] = reason[len("duplicate of "):]
            elif sha and (status != FAILED or path in self.kept):
                self.content_at.setdefault(sha, path)

    def _dictionary(self, files: list[InputFile]) -> tuple[int, bytes] | None:
        """The stored dictionary, else one built now (and committed first) from this run's files."""
        if self.db is None:
            return None
        stored = source_store.load_dictionary(self.db.conn)
        if stored:
            return stored
        sizes = []
        for f in files:
            try:
                sizes.append(os.path.getsize(f.path))
            except OSError:
                sizes.append(0)
        chosen = source_store.choose_samples(sizes)
        samples = []
        for i in chosen:
            try:
                samples.append(Path(files[i].path).read_bytes())
            except OSError:
                continue
        built = source_store.build_dictionary(samples)
        if built and not self.dry_run:
            with self.db.transaction():
                source_store.store_dictionary(self.db.conn, *built)
            # a dictionary already in another run's commit wins; use whatever is stored now
            return source_store.load_dictionary(self.db.conn)
        return None

    # -- the run -----------------------------------------------------------------------------------------
    def ingest(self, files: list[InputFile]) -> IngestSummary:
        from benchmark_db.lake import write_lock  # one ingest at a time per lake: it checks, then inserts

        with write_lock(self.db.conn) if self.db is not None and not self.dry_run else contextlib.nullcontext():
            return self._ingest(files)

    def _ingest(self, files: list[InputFile]) -> IngestSummary:
        self._load_log()
        self._claimed_targets: set[str] = set()
        if self.action == "archive" and self.archive_dir is not None:
            # an archive folder inside an input folder: what was archived is not input again (else each run
            # would log the archived copies as duplicates and move them one level deeper). Real paths: the
            # archive folder or an input may be reached through a symbolic link
            inside, real_folder = os.path.realpath(self.archive_dir) + os.sep, functools.cache(os.path.realpath)
            files = [f for f in files if not f.path.startswith(str(self.archive_dir) + os.sep)
                     and not (real_folder(os.path.dirname(f.path)) + os.sep).startswith(inside)]
        summary = IngestSummary(dry_run=self.dry_run)
        self._seen: set[str] = set()  # paths decided in this run
        self._dry_replaced: list[str] = []  # a dry run: contents whose stored rows a real run would replace
        self._dry_log_rows = 0  # a dry run: the ingest log rows a real run would add ...
        self._logged_before = set(self.known) if self.dry_run else set()  # (known grows as files are decided)
        self._dry_documents: set[str] = set()  # ... the contents whose originals it would keep ...
        self._dry_old_contents: Counter = Counter()  # ... and the earlier contents of changed files
        self._holds_cache: dict[tuple[str, str], bool] = {}
        # a failed file is tried again on every run: the fault may have been the converter's; so is a
        # duplicate whose original is gone or has changed since: converted again, it takes the rows of that
        # content over (see _take), instead of naming a file that no longer holds them
        # (only the duplicates among this run's files are checked: an update of one file reads no others)
        inputs = {f.path for f in files}
        # and a file another converter version made is converted again: its rows are rebuilt (see _take)
        known_sha = {p: s for p, (s, status) in self.known.items()
                     if s and status != FAILED and p not in self.outdated
                     and (p not in self.duplicate_of or p not in inputs or self._holds(self.duplicate_of[p], s))}
        if self.db is not None and not self.dry_run:  # before the dictionary, which this run may add
            summary.rows_before = self._table_rows()
        dictionary = None if self.dry_run else self._dictionary(files)
        fact_columns = None
        if self.db is not None and not self.dry_run:
            from benchmark_db_models import RECORD_TYPE_BY_TABLE

            fact_columns = {t: self.db.fact_columns(RECORD_TYPE_BY_TABLE[t]) for t in RESULT_TABLES}
        initargs = (self.converter, known_sha, dictionary, self.force, not self.dry_run, fact_columns)
        self.codec = source_store.CODEC_DICT if dictionary else source_store.CODEC_PLAIN
        self.dictionary_id = dictionary[0] if dictionary else None
        with self._one_checkpoint(len(files)), _fewer_collections():
            self._run(files, initargs, summary)
        if self.db is not None:
            summary.table_rows = self._table_rows()
            for table, ids in summary.new_dimension_ids.items():  # a dry run: those already stored are not new
                column = _DIMENSION_TABLES[table]
                ids.difference_update(r[0] for r in self.db.conn.execute(f"SELECT {column} FROM {table}").fetchall())
            if self.dry_run and self._dry_replaced:
                summary.rows_replaced = self._stored_rows(self._dry_replaced)
        if self.dry_run:
            summary.bookkeeping_added = self._dry_bookkeeping()
        moved = moved_files(summary)
        if moved:  # on stderr too: the summary table is not printed in every format
            log.info("%s", moved)
        return summary

    def _batch_writer(self) -> _BatchWriter:
        """Where batches commit: a thread of their own, unless the ingest runs inside the caller's transaction
        (the integrator tags what it ingests in one): the BenchmarkDB object serialises its calls on a lock
        that a transaction block holds for its thread, so a writer thread would wait for it forever."""
        if self.db is not None and getattr(self.db, "_in_transaction", False):
            return _InlineWriter(self._flush)
        return _BatchWriter(self._flush)

    def _dry_bookkeeping(self) -> dict[str, int]:
        """A dry run: the ingest log rows and originals a real run would add, counted as _flush writes them (an
        original is kept once per content; a changed file's earlier original goes once no log row names it)."""
        added = {"ingested_files": self._dry_log_rows, "source_documents": len(self._dry_documents)}
        if self.db is None:
            return added
        conn = self.db.conn
        stored = {row[0] for row in conn.execute("SELECT sha256 FROM source_documents").fetchall()}
        named = dict(conn.execute("SELECT sha256, count(*) FROM ingested_files WHERE sha256 IS NOT NULL "
                                  "GROUP BY sha256").fetchall())
        dropped = sum(1 for sha, files in self._dry_old_contents.items()
                      if sha in stored and sha not in self._dry_documents and named.get(sha, 0) <= files)
        added["source_documents"] = len(self._dry_documents - stored) - dropped
        return added

    def _stored_rows(self, shas: list[str]) -> dict[str, int]:
        """Rows per result table of the runs of these contents (those a real run would delete)."""
        ids = [run_id_for_source(s) for s in set(shas)]
        placeholders = ", ".join("?" for _ in ids)
        return {t: self.db.conn.execute(f"SELECT count(*) FROM {t} WHERE run_id IN ({placeholders})",
                                        ids).fetchone()[0] for t in RESULT_TABLES}

    def _table_rows(self) -> dict[str, int]:
        return {t: self.db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}

    @contextlib.contextmanager
    def _one_checkpoint(self, files: int):
        """During an ingest of several batches, checkpoint once at the end instead of every 16 MB of WAL.

        Each DuckDB checkpoint rewrites the last row group of every table and every index whole; done after
        every few batches it leaves half the file as free blocks (86 MB instead of 44 MB for 20,000 files).
        Commits still go to the WAL, so a killed run loses nothing it committed."""
        if self.db is None or self.dry_run or files <= self.batch_size:
            yield
            return
        conn = self.db.conn
        previous = conn.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
        conn.execute("SET checkpoint_threshold = '64GB'")
        try:
            yield
        finally:
            conn.execute(f"SET checkpoint_threshold = '{previous}'")
        conn.execute("CHECKPOINT")

    def _run(self, files: list[InputFile], initargs: tuple, summary: IngestSummary) -> None:
        from benchmark_db.cli import progress

        batch = _Batch()
        with deferred_interrupts() as interrupt, \
                progress(None, total=len(files), desc=self.progress_desc, quiet=self.quiet, unit="file") as bar, \
                self._batch_writer() as writer:
            for chunk in _chunk_stream(files, self.parallel, initargs):
                if interrupt.requested:
                    raise KeyboardInterrupt
                for index, prepared in enumerate(chunk.files):
                    outcome, keep_rows = self._take(prepared, batch)
                    summary.outcomes.append(outcome)
                    if keep_rows and self.dry_run:
                        for record in prepared.conversion.records:
                            if record.TABLE in _DIMENSION_TABLES:
                                summary.new_dimension_ids.setdefault(record.TABLE, set()).add(
                                    getattr(record, record.ID) or record.natural_id())
                    if keep_rows and chunk.facts:
                        if not batch.facts or batch.facts[-1][0] is not chunk:
                            batch.facts.append((chunk, []))
                        batch.facts[-1][1].append(index)
                    if len(batch) >= self.batch_size:
                        writer.write(batch)
                        batch = _Batch()
                bar.update(len(chunk.files))
            if interrupt.requested:
                raise KeyboardInterrupt
            writer.write(batch)

    def _archive_target(self, file: InputFile, sha256: str | None) -> str | None:
        """Where --action archive moves the file: its relative path under the archive folder, or, when that
        name is taken by another file (two inputs with the same relative path, an earlier archived version),
        a free name beside it (`name-1.json`). An archived file is never overwritten by different content.
        With --action remove: "removed", the log's mark of a file deleted on purpose."""
        if self.action == "remove":
            return REMOVED_MARK
        if self.action != "archive":
            return None
        rel = Path(file.real_rel)  # the file's own name, even one that is not UTF-8 (logged escaped)
        target, n = self.archive_dir / rel, 0
        while str(target) in self._claimed_targets or (target.exists() and not _same_content(target, sha256)):
            n += 1
            target = self.archive_dir / numbered_name(rel, n)
        self._claimed_targets.add(str(target))
        return str(target)

    def _take(self, p: _Prepared, batch: _Batch) -> tuple[FileOutcome, bool]:
        """Decide what becomes of one prepared file and add its writes to the batch; also whether its fact
        rows (in its chunk's tables) go in."""
        path = p.file.path
        self._rekey_if_new_result(path, p.sha256, batch)
        kept = self._keep_earlier(p, batch)
        if kept is not None:
            return kept, False
        if p.error is not None:
            outcome = FileOutcome(path, FAILED, reason=p.error)
            self._log(batch, outcome)
            return outcome, False
        if p.unchanged:
            outcome = FileOutcome(path, UNCHANGED, p.sha256, p.size, kind=self.logged_kind.get(path),
                                  reason="unchanged since the last ingest")
            previous = self.known.get(path)
            if self.action and previous and previous[1] != FAILED:
                target = self._archive_target(p.file, p.sha256)
                outcome.archived_to = log_key(target) if target else None
                if outcome.archived_to:
                    batch.archive_updates.append((path, outcome.archived_to))
                batch.after_commit.append((p.file, outcome, target))
                self.archived.add(path)
            return outcome, False
        conv = p.conversion
        status = getattr(conv, "status", FAILED)
        outcome = FileOutcome(path, status, p.sha256, p.size, kind=getattr(conv, "kind", None),
                              reason=getattr(conv, "reason", None),
                              conversions=list(getattr(conv, "conversions", None) or []),
                              categories=sorted(getattr(conv, "categories", None) or []))
        records = list(getattr(conv, "records", None) or []) if status == INGESTED else []
        if status == INGESTED and self.categories and not (set(outcome.categories) & self.categories):
            outcome.status = FILTERED
            outcome.reason = f"not in the categories asked for ({', '.join(sorted(self.categories))})"
            return outcome, False
        owner = self.content_at.get(p.sha256)
        duplicate = status != FAILED and owner is not None and owner != path
        moved_from = None
        if duplicate and self._gone(owner):
            # the file was renamed or moved: the new path takes over the log entry and the rows (rebuilt
            # below, so the database is the one a fresh ingest of the new path gives: nothing doubled)
            duplicate, moved_from = False, owner
            batch.moved.append(owner)
            del self.known[owner]
            note = f"same content as {owner}, which is no longer there (moved or renamed): its rows stay, " \
                   "now under this path; nothing added"
            outcome.reason = f"{outcome.reason}; {note}" if outcome.reason else note
        elif duplicate and not self._holds(owner, p.sha256):
            # the original has changed since it was ingested and is not yet converted again in this run:
            # this file takes over the rows of the content and the original's log entry goes, so the
            # original (later in this run or in a later one) is new content and does not replace these rows
            duplicate, moved_from = False, owner
            batch.moved.append(owner)
            del self.known[owner]
            note = f"same content as {owner} had, which has changed since: its rows stay, now under this path"
            outcome.reason = f"{outcome.reason}; {note}" if outcome.reason else note
        if duplicate:
            outcome.status = SKIPPED
            outcome.reason = f"duplicate of {owner}"
            records = []
        elif status == INGESTED:
            outcome.rows_by_table = dict(p.rows_by_table)
        previous = self.known.get(path)
        if moved_from is not None or (previous and previous[0] == p.sha256 and not duplicate):
            # converted again (--force, a retry, a moved file, another converter version): its rows are
            # rebuilt from scratch, not merged
            batch.rebuilt.append(p.sha256)
            if path in self.outdated and previous[1] != FAILED and not self.force and status != FAILED:
                before = self.outdated[path]
                note = (f"converted again: its rows were made by converter version {before}, this is version "
                        f"{self.converter_version}" if before is not None else
                        f"converted again: its rows predate converter versions (this is version "
                        f"{self.converter_version})")
                outcome.reason = f"{outcome.reason}; {note}" if outcome.reason else note
        self.outdated.pop(path, None)
        if previous and previous[0] and previous[0] != p.sha256:
            earlier_owner = self.content_at.get(previous[0])
            if earlier_owner is None or earlier_owner == path or self._gone(earlier_owner):
                # its earlier rows are its own (not those of the file it was a duplicate of, which is
                # still there): they go
                batch.replaced.append(previous[0])
                if earlier_owner is not None:
                    del self.content_at[previous[0]]
                if earlier_owner not in (None, path):  # that file is gone: this one had taken its place
                    batch.moved.append(earlier_owner)
                    self.known.pop(earlier_owner, None)
                if outcome.reason is None:
                    outcome.reason = ("changed since the last ingest: its earlier rows "
                                      f"{'would be' if self.dry_run else 'were'} replaced")
        if status != FAILED and not duplicate:
            self.content_at[p.sha256] = path
        self.known[path] = (p.sha256, outcome.status)
        self._seen.add(path)
        batch.records.extend(records)
        if p.compressed is not None and not duplicate:
            dictionary_id = self.dictionary_id if self.codec == source_store.CODEC_DICT else None
            batch.documents.append({"sha256": p.sha256, "size_bytes": p.size, "codec": self.codec,
                                    "dictionary_id": dictionary_id, "content": p.compressed})
        # with --categories, a file of no category (a run config, a progress log) is not one the user asked for
        if self.action and outcome.status != FAILED and not (self.categories and not outcome.categories):
            target = self._archive_target(p.file, p.sha256)
            outcome.archived_to = log_key(target) if target else None
            batch.after_commit.append((p.file, outcome, target))
            # gone on purpose once its batch commits: a copy in a later batch is its duplicate, not its
            # successor (else each copy would take over the log entry of the one before, and only the
            # last one of them would stay in the log)
            self.archived.add(path)
        self._log(batch, outcome)
        return outcome, status == INGESTED and not duplicate

    def _keep_earlier(self, p: _Prepared, batch: _Batch) -> FileOutcome | None:
        """A logged file that fails now (written half, unreadable for a while) is not new content: its earlier
        rows and original stay, and its log row (failed) keeps their sha256, so the next content that converts
        replaces them. Replacing them by nothing lost the only stored copy of its last good content; keeping
        them without a log row left them behind, doubled once the file converted again."""
        path = p.file.path
        previous = self.known.get(path)
        failed = p.error is not None or (not p.unchanged and getattr(p.conversion, "status", FAILED) == FAILED)
        if not failed or not previous or not previous[0] or (previous[1] == FAILED and path not in self.kept) \
                or path in self.duplicate_of:  # a duplicate's content has its rows under the path it duplicates
            return None
        sha = previous[0]
        why = p.error or getattr(p.conversion, "reason", None) or "it does not convert"
        outcome = FileOutcome(path, FAILED, sha, kind=self.logged_kind.get(path),
                              reason=f"{why}; {KEPT_NOTE} (content {sha[:12]}) until it converts again")
        self.known[path] = (sha, FAILED)
        self.kept.add(path)
        self._seen.add(path)
        self._log(batch, outcome)
        return outcome

    def _rekey_if_new_result(self, path: str, sha256: str | None, batch: _Batch) -> None:
        """The logged file at `path` was archived or removed, and a file with other content is at `path` now:
        a new result under a name used before (`latest.json`), not an edit (as --auto-store takes it). The
        earlier entry moves to the path of its archived copy (a removed file's to a name of its own), so that
        its rows and original stay instead of being replaced by the new file's: with --action remove they were
        its only copy. That holds once the archived copy is deleted too: the database keeps the result and its
        original, so an emptied archive folder is the usual clean-up, not a sign of an edit."""
        archived = self.archived_as.get(path)
        if not sha256 or not archived or not archived[0] or archived[0] == sha256 or path in self._seen:
            return
        sha, archived_to = self.archived_as.pop(path)
        new_key = f"{path} (removed; sha256 {sha[:12]})" if archived_to == REMOVED_MARK else archived_to
        entry = self.known.pop(path)
        self.archived.discard(path)
        if new_key in self.known:  # the archived copy is logged already (read from the archive): that row stands
            batch.moved.append(path)
        else:
            batch.rekeyed.append((path, new_key))
            self.known[new_key], self.archived_as[new_key] = entry, (sha, archived_to)
            self.archived.add(new_key)
            if path in self.outdated:
                self.outdated[new_key] = self.outdated.pop(path)
        if self.content_at.get(sha) == path:
            self.content_at[sha] = new_key

    def _holds(self, path: str, sha256: str) -> bool:
        """Whether the logged owner `path` of content `sha256` still holds it: decided in this run, archived
        or removed on purpose, an escaped name that cannot be checked, or its file has that content now.
        Asked only about the owners of duplicates (rare); each file is hashed once per run."""
        if path in self._seen or path not in self.known or path in self.archived or "\\x" in path:
            return True
        key = (path, sha256)
        if key not in self._holds_cache:
            self._holds_cache[key] = _same_content(Path(path), sha256)
        return self._holds_cache[key]

    def _gone(self, path: str) -> bool:
        """Whether the logged file at `path` no longer exists although nothing archived or removed it (it
        was renamed, moved or deleted by hand). Asked only about the rare duplicate or changed copy."""
        if path not in self.known or path in self.archived or "\\x" in path:  # \xNN: an escaped, unreal name
            return False
        return not os.path.lexists(path)

    def _write_facts(self, batch: _Batch) -> None:
        """The fact rows of the batch's files, one INSERT per table (after the dimensions they name)."""
        from benchmark_db_models import RECORD_TYPE_BY_TABLE

        for table in RESULT_TABLES:
            parts = []
            for chunk, indexes in batch.facts:
                rows = chunk.facts.get(table)
                if rows is None:
                    continue
                if len(indexes) < len(chunk.files):
                    rows = _only_files(rows, indexes)
                parts.append(rows)
            if parts:
                self.db.insert_table(RECORD_TYPE_BY_TABLE[table], _concat(parts))

    def _log(self, batch: _Batch, outcome: FileOutcome) -> None:
        archived_to = outcome.archived_to
        if archived_to is None and outcome.sha256 and self.archived_as.get(outcome.path, (None,))[0] == outcome.sha256:
            # the same content converted again (from its stored original, or with --force): the file is still
            # where it was archived to, or still removed
            archived_to = self.archived_as[outcome.path][1]
        batch.log_rows.append({
            "path": outcome.path, "sha256": outcome.sha256, "size_bytes": outcome.size_bytes,
            "kind": outcome.kind, "status": outcome.status, "reason": outcome.reason, "rows": outcome.rows,
            "rows_by_table": _json(outcome.rows_by_table) if outcome.rows_by_table else None,
            "conversions": _json(outcome.conversions) if outcome.conversions else None,
            "archived_to": archived_to, "converter_version": self.converter_version})

    def _flush(self, batch: _Batch) -> None:
        if self.dry_run:
            self._dry_replaced.extend(batch.rebuilt + batch.replaced)
            # as the writes below would count: a log row for a path not logged yet, or for one whose earlier
            # row is renamed (an archived file's name taken again) or deleted (a moved file)
            retitled = {path for path, _ in batch.rekeyed} | set(batch.moved)
            self._dry_log_rows += sum(1 for row in batch.log_rows
                                      if row["path"] not in self._logged_before or row["path"] in retitled) - len(batch.moved)
            self._dry_documents.update(row["sha256"] for row in batch.log_rows if row["sha256"])
            self._dry_old_contents.update(batch.replaced)
        if self.dry_run or self.db is None or len(batch) == 0:
            return
        import pyarrow as pa

        conn = self.db.conn
        now = _utc_now()
        with self.db.transaction():
            rebuilt_ids = [run_id_for_source(s) for s in batch.rebuilt]
            replaced_ids = [run_id_for_source(s) for s in batch.replaced]
            if rebuilt_ids or replaced_ids:  # rows moved to the archive are replaced too (hidden there)
                from benchmark_db.maintenance import archive

                archive.supersede_runs(conn, rebuilt_ids + replaced_ids)
            if rebuilt_ids:
                placeholders = ", ".join("?" for _ in rebuilt_ids)
                for table in RESULT_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE run_id IN ({placeholders})", rebuilt_ids)
            if replaced_ids:
                old = pa.table({"sha256": pa.array(batch.replaced, pa.string()),
                                "run_id": pa.array(replaced_ids, pa.int64())})
                conn.register("_ingest_old", old)
                try:
                    for table in RESULT_TABLES:
                        conn.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT run_id FROM _ingest_old)")
                    # files skipped as duplicates of the replaced content are taken again by the next run
                    conn.execute("DELETE FROM ingested_files WHERE sha256 IN (SELECT sha256 FROM _ingest_old) "
                                 "AND status = 'skipped' AND starts_with(reason, 'duplicate of ')")
                finally:
                    conn.unregister("_ingest_old")
            if batch.records:
                self.db.insert_many(_fold_dimensions(batch.records))
            self._write_facts(batch)
            for path, new_key in batch.rekeyed:  # before the new log rows, which take `path` over
                conn.execute("UPDATE ingested_files SET path = ? WHERE path = ?", [new_key, path])
                conn.execute("UPDATE ingested_files SET reason = ? WHERE reason = ?",
                             [f"duplicate of {new_key}", f"duplicate of {path}"])
            if batch.moved:  # before the new log rows: a changed original may be logged again in this batch
                placeholders = ", ".join("?" for _ in batch.moved)
                conn.execute(f"DELETE FROM ingested_files WHERE path IN ({placeholders})", batch.moved)
            if batch.log_rows:
                rows = batch.log_rows
                table = pa.table({
                    "path": pa.array([r["path"] for r in rows], pa.string()),
                    "sha256": pa.array([r["sha256"] for r in rows], pa.string()),
                    "size_bytes": pa.array([r["size_bytes"] for r in rows], pa.int64()),
                    "kind": pa.array([r["kind"] for r in rows], pa.string()),
                    "status": pa.array([r["status"] for r in rows], pa.string()),
                    "reason": pa.array([r["reason"] for r in rows], pa.string()),
                    "rows": pa.array([r["rows"] for r in rows], pa.int32()),
                    "rows_by_table": pa.array([r["rows_by_table"] for r in rows], pa.string()),
                    "conversions": pa.array([r["conversions"] for r in rows], pa.string()),
                    "ingested_at": pa.array([now] * len(rows), pa.timestamp("us")),
                    "archived_to": pa.array([r["archived_to"] for r in rows], pa.string()),
                    "converter_version": pa.array([r["converter_version"] for r in rows], pa.int32()),
                })
                conn.register("_ingest_log", table)
                try:
                    # DELETE + INSERT rather than INSERT OR REPLACE: DuckLake tables have no primary keys
                    conn.execute("DELETE FROM ingested_files WHERE path IN (SELECT path FROM _ingest_log)")
                    conn.execute(f"INSERT INTO ingested_files ({', '.join(_LOG_COLUMNS)}) "
                                 f"SELECT {', '.join(_LOG_COLUMNS)} FROM _ingest_log")
                finally:
                    conn.unregister("_ingest_log")
            for path, archived_to in batch.archive_updates:
                conn.execute("UPDATE ingested_files SET archived_to = ? WHERE path = ?", [archived_to, path])
            if batch.documents:
                docs = batch.documents
                table = pa.table({
                    "sha256": pa.array([d["sha256"] for d in docs], pa.string()),
                    "size_bytes": pa.array([d["size_bytes"] for d in docs], pa.int64()),
                    "codec": pa.array([d["codec"] for d in docs], pa.string()),
                    "dictionary_id": pa.array([d["dictionary_id"] for d in docs], pa.int64()),
                    "content": pa.array([d["content"] for d in docs], pa.binary()),
                })
                conn.register("_ingest_docs", table)
                try:
                    conn.execute("INSERT INTO source_documents (sha256, size_bytes, codec, dictionary_id, content) "
                                 "SELECT DISTINCT ON (sha256) sha256, size_bytes, codec, dictionary_id, content "
                                 "FROM _ingest_docs WHERE sha256 NOT IN (SELECT sha256 FROM source_documents)")
                finally:
                    conn.unregister("_ingest_docs")
            if batch.replaced:
                placeholders = ", ".join("?" for _ in batch.replaced)
                conn.execute(f"DELETE FROM source_documents WHERE sha256 IN ({placeholders}) AND sha256 NOT IN "
                             "(SELECT sha256 FROM ingested_files WHERE sha256 IS NOT NULL)", batch.replaced)
        self.batches_committed += 1
        log.debug("committed batch %d (%d files)", self.batches_committed, len(batch.log_rows))
        if self.on_batch_committed:
            self.on_batch_committed(self.batches_committed)
        # only now, with the rows committed, may the files themselves go
        # links first: a link archived after its target was moved away could only be moved as a dangling link
        actions = sorted(batch.after_commit, key=lambda a: not os.path.islink(a[0].real_path))
        left = [outcome for file, outcome, target in actions if not _apply_action(self.action, file, outcome, target)]
        if left:
            self._unlog_actions(left)

    def _unlog_actions(self, outcomes: list[FileOutcome]) -> None:
        """Files the action left where they are (written to since they were read, or not movable): their log
        rows and the summary must not name a copy that was never made, nor call them removed."""
        paths = [o.path for o in outcomes]
        for outcome in outcomes:
            outcome.archived_to, outcome.removed = None, False
            self.archived.discard(outcome.path)
        with self.db.transaction():
            self.db.conn.execute(f"UPDATE ingested_files SET archived_to = NULL WHERE path IN "
                                 f"({', '.join('?' for _ in paths)})", paths)


_OUTDATED_SQL = """
    SELECT path, sha256 FROM ingested_files
    WHERE converter_version IS DISTINCT FROM ? AND status <> 'failed' AND sha256 IS NOT NULL
      AND NOT starts_with(COALESCE(reason, ''), 'duplicate of ')
      AND sha256 IN (SELECT sha256 FROM source_documents)"""


def count_outdated(conn) -> int:
    """Logged files whose rows an earlier converter version made (see `outdated_originals`)."""
    return conn.execute(f"SELECT count(*) FROM ({_OUTDATED_SQL})", [CONVERTER_VERSION]).fetchone()[0]


def warn_outdated(conn) -> None:
    """Say when the log holds files an earlier converter version made that this run did not convert again."""
    count = count_outdated(conn)
    if count:
        log.warning("%d logged file(s) hold rows an earlier converter version made and were not among this run's "
                    "inputs (archived, removed or elsewhere): `python benchmark_db_migration.py --reconvert` "
                    "converts them again from their stored originals", count)


def outdated_originals(conn, folder: Path) -> list[InputFile]:
    """The logged files whose rows an earlier converter version made, as inputs that read their stored
    originals (written into `folder`): ingested, they are converted again under their logged paths, whether the
    files were archived, removed or are elsewhere now. Failed files and duplicates are left out: a failed one
    is tried again with its file, a duplicate holds no rows."""
    files = []
    for n, (path, sha) in enumerate(conn.execute(_OUTDATED_SQL + " ORDER BY path", [CONVERTER_VERSION]).fetchall()):
        data = source_store.original_text(conn, sha)
        stored = folder / f"{n}.json"
        stored.write_bytes(data)
        files.append(InputFile(path, Path(path).name, str(stored)))
    return files


# the longest file name (in bytes) the usual file systems take: ext4, XFS, btrfs, APFS and NTFS (in UTF-16 units)
NAME_MAX = 255


def numbered_name(rel: Path, n: int) -> Path:
    """`rel` with `-n` before its suffix (`latest-1.json`), the free name beside a taken one. A name that is
    already as long as a file name can be loses the end of its stem instead (else creating it, or asking
    whether it exists, fails with "File name too long" and stops the run)."""
    mark, suffix = f"-{n}", rel.suffix
    stem = rel.stem.encode("utf-8", "surrogateescape")
    room = NAME_MAX - len(mark.encode()) - len(suffix.encode("utf-8", "surrogateescape"))
    stem = stem[:max(room, 1)].decode("utf-8", "ignore") if len(stem) > room else rel.stem
    return rel.with_name(f"{stem}{mark}{suffix}")


def _same_content(path: Path, sha256: str | None) -> bool:
    """Whether the file at `path` holds exactly this content (a re-run after a crash between the commit and
    the move finds its own earlier copy there)."""
    if not sha256:
        return False
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest() == sha256
    except OSError:
        return False


def _apply_action(action: str | None, file: InputFile, outcome: FileOutcome, archive_to: str | None) -> bool:
    """Archive or remove the file; False when it stays where it is."""
    source = Path(file.real_path)
    if not source.exists():  # gone already (moved by a run killed after its commit, or by hand)
        return True
    if outcome.sha256 and not os.path.islink(source) and not _same_content(source, outcome.sha256):
        # written to since it was read: its new content is in no row yet, so it stays for the next run
        log.warning("did not %s %s: it changed after it was read (its new content is not stored yet; the next "
                    "run ingests it)", action, source)
        return False
    try:
        if action == "archive" and archive_to:
            target = Path(archive_to)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target.unlink()
            if not _archive_link(source, target, outcome.sha256):
                shutil.move(str(source), str(target))
        elif action == "remove":
            source.unlink()
            outcome.removed = True
    except OSError as exc:
        log.warning("could not %s %s: %s (its rows are committed; the file stays)", action, source, exc)
        return False
    return True


def _archive_link(source: Path, target: Path, sha256: str | None) -> bool:
    """Archive a symbolic link as a copy of the content it led to, then drop the link; False when `source` is
    no link or that content cannot be read any more (the link itself is moved then). A moved link would
    point, from the archive, at a file that may be archived or changed later: a dangling or wrong copy."""
    if not source.is_symlink() or not _same_content(source, sha256):
        return False
    shutil.copyfile(source, target)
    source.unlink()
    return True


# json.dumps(value, sort_keys=True, default=str) builds this very encoder on every call: build it once
_LOG_JSON = json.JSONEncoder(sort_keys=True, default=str)


def _json(value) -> str:
    return _LOG_JSON.encode(value)


# ---------------------------------------------------------------------------------------------------------
# Entry points the scripts call


def ingest_files(db, inputs: Iterable[str | os.PathLike], *, missing_ok: bool = False, **options) -> IngestSummary:
    """Ingest every document under `inputs` into `db` (a BenchmarkDB, or None for a dry run)."""
    files = discover_files(inputs, missing_ok=missing_ok)
    return Ingestor(db, **options).ingest(files)


CATEGORIES = ("performance", "hardware", "compatibility", "integration", "web")
_CATEGORY_ALIASES = {"web_platform": "web", "webplatform": "web", "integration_test": "integration",
                     "integration_tests": "integration", "hardware_compatibility": "compatibility"}


@contextlib.contextmanager
def dry_run_database(path: str, lock_timeout: float):
    """The database a dry run compares the files with, opened so that nothing is written to it: a BenchmarkDB
    on a read-only connection, or None (every file shows as new) when the file does not exist or has an
    older schema, which only a real run may upgrade."""
    from benchmark_db import schema
    from benchmark_db.connection import MEMORY, connect, is_lake
    from benchmark_db_models import BenchmarkDB

    if is_lake(path) or path == MEMORY:  # nothing on this machine to leave untouched; the helper decides
        with BenchmarkDB(path, lock_timeout=lock_timeout) as db:
            yield db
        return
    if not os.path.exists(path):
        yield None
        return
    conn = connect(path, read_only=True, migrate=False, lock_timeout=lock_timeout)
    try:
        version = schema.current_version(conn)
        schema.check_not_newer(version)
        if version < schema.SCHEMA_VERSION:
            log.warning("%s has schema version %d; a dry run does not upgrade it, so every file shows as new",
                        path, version)
            yield None
        else:
            yield BenchmarkDB(path, conn=conn, lock_timeout=lock_timeout)
    finally:
        conn.close()


def parse_categories(values: Iterable[str] | None) -> list[str]:
    """`--categories performance hardware` and `--categories performance,hardware` alike. An unknown name is
    a usage error: silently matching nothing would filter every file out and report success."""
    out: list[str] = []
    for value in values or ():
        for name in (v.strip().lower() for v in str(value).split(",") if v.strip()):
            name = _CATEGORY_ALIASES.get(name.replace("-", "_"), name)
            if name not in CATEGORIES:
                raise UsageError(f"unknown category {name!r}", "use one or more of " + ", ".join(CATEGORIES))
            if name not in out:
                out.append(name)
    if values and not out:  # `--categories ""` (an empty shell variable): not "every category"
        raise UsageError("--categories names no category", "use one or more of " + ", ".join(CATEGORIES))
    return out


def parse_list(values: Iterable[str] | str | None) -> list[str]:
    """A comma list (or several of them) as a list of non-empty items. A value that names an existing path as
    it stands is one item: a file called `a,b.json` or ` a.json` is not split or trimmed away."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    items = []
    for value in map(str, values):
        if "," in value or value != value.strip():
            if os.path.lexists(value):
                items.append(value)
                continue
        items.extend(v if os.path.lexists(v) else v.strip() for v in value.split(",") if v.strip())
    return items


# ---------------------------------------------------------------------------------------------------------
# What the three ingest tools share on the command line


def _report_path(text: str) -> str:
    """--report's FILE: JSON or Markdown by its suffix. Any other suffix is refused before any work (a
    `report.html` or `report.csv` got JSON in it, found out only after the run)."""
    import argparse

    suffix = Path(text).suffix.lower()
    if suffix and suffix not in (".json", ".md", ".markdown"):
        raise argparse.ArgumentTypeError(f"{text} is not a .json or .md file (the report is JSON or Markdown)")
    return text


def check_report(path: str | None) -> None:
    """A usage error, before any work, for a --report that cannot be written: a folder, or a path under a file
    (a missing folder is created). Found out after the run, it came after all the work."""
    if not path:
        return
    if os.path.isdir(path):
        raise UsageError(f"--report {path} is a folder", "pass a file name, e.g. report.md or report.json")
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write the report {path}: {folder} is a file, not a folder",
                         "pass --report a path in a writable folder")


def check_outputs(outputs: dict[str, str | None], inputs: Iterable[str | os.PathLike]) -> None:
    """A usage error, before any work, for an output (`{"--report": path, "--output": path}`) that is one of
    the input files, or a result file inside an input folder: writing it would overwrite the user's result,
    or give the next scan a report to ingest in its place."""
    reals = [os.path.realpath(raw) for raw in inputs]
    folders = [real for real in reals if os.path.isdir(real)]
    files = {real for real in reals if os.path.isfile(real)}
    for option, path in outputs.items():
        if not path:
            continue
        real = os.path.realpath(path)
        if real in files:
            raise UsageError(f"{option} {path} is one of the input files; writing it would overwrite that result",
                             f"pass {option} a path outside the inputs")
        if Path(real).suffix.lower() in DOCUMENT_SUFFIXES and any(real.startswith(f + os.sep) for f in folders):
            raise UsageError(f"{option} {path} is inside an input folder, where the next run would read it as a "
                             "result file", f"pass {option} a path outside the input folders (or a .md/.csv name)")


def add_ingest_options(parser, *, actions: bool = True) -> None:
    """--parallel, --batch-size, --force, --dry-run, --report (and --action/--archive-dir)."""
    from benchmark_db.cli import positive_int
    group = parser.add_argument_group("ingest options")
    group.add_argument("--parallel", type=positive_int, default=1, metavar="N",
                       help="parse files in N worker processes; one writer commits (default: 1, which "
                            "converts in this process while a thread commits; each worker takes about 150 MB, "
                            "worth it with more than 2 cores)")
    group.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, metavar="FILES",
                       help="files committed per transaction (default: %(default)s)")
    group.add_argument("--force", action="store_true",
                       help="convert files again even when the ingest log holds their content unchanged")
    group.add_argument("--dry-run", action="store_true",
                       help="write nothing; show per file what would be stored")
    group.add_argument("--strict", action="store_true", help="exit 1 when any file failed to convert")
    group.add_argument("--report", metavar="FILE", type=_report_path, default=None,
                       help="also write the full per-file report to FILE (.json, or .md for markdown)")
    if actions:
        group.add_argument("--action", choices=ACTIONS, default=None,
                           help="after a file's rows are committed: move it to --archive-dir (keeping its "
                                "relative path) or delete it; failed files are left in place")
        group.add_argument("--archive-dir", metavar="DIR", default=None,
                           help="where --action archive moves files (default: ./archived_json)")


def summary_tables(summary: IngestSummary) -> tuple[list[dict], list[dict]]:
    by_kind = summary.by_kind()
    added = summary.rows_added()
    tables = sorted(set(added) | set(summary.table_rows))
    rows = [{"table": t, "rows_added": added.get(t, 0), "rows_total": summary.table_rows.get(t)}
            for t in tables]
    return by_kind, rows


def render_summary(summary: IngestSummary, fmt: str) -> str:
    """The end-of-run summary: files by kind and status, rows per table, failed files (or, for a dry run,
    what every file would become)."""
    from benchmark_db.output import counted, render

    if fmt == "json":
        return _json_pretty(summary.as_dict(with_files=True))
    by_kind, rows = summary_tables(summary)
    parts = []
    if summary.dry_run:
        files = [{"path": o.path, "status": o.status, "kind": o.kind, "rows": o.rows,
                  "rows_by_table": ", ".join(f"{t}={n}" for t, n in sorted(o.rows_by_table.items())),
                  "reason": o.reason} for o in summary.outcomes]
        parts.append(render(files, fmt) if files else "(no files)")
    totals = summary.totals()
    head = ("dry run: nothing written. " if summary.dry_run else "") + ", ".join(
        counted(totals[k], "file") if k == "files" else f"{totals[k]} {k}"
        for k in ("files", INGESTED, SKIPPED, FAILED, UNCHANGED, FILTERED) if totals[k] or k == "files")
    moved = moved_files(summary)
    if moved:
        head += f"; {moved}"
    if fmt == "table":
        parts.append(head)
    parts.append(render(by_kind, fmt) if by_kind else summary.nothing_note)
    if rows:
        parts.append(render(rows, fmt))
    failed = [{"path": o.path, "reason": o.reason} for o in summary.failed]
    if failed and not summary.dry_run:
        parts.append(render(failed, fmt))
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def moved_files(summary: IngestSummary) -> str | None:
    """'N files archived to DIR' / 'N files removed' (or 'would be') for a run with --action, else None."""
    archived = [o.archived_to for o in summary.outcomes if o.archived_to and o.archived_to != REMOVED_MARK]
    removed = sum(1 for o in summary.outcomes if o.archived_to == REMOVED_MARK)
    verb = "would be " if summary.dry_run else ""
    said = []
    if archived:
        folders = sorted({str(Path(a).parent) for a in archived})
        where = os.path.commonpath(folders) if len(folders) > 1 else folders[0]
        said.append(f"{len(archived)} file(s) {verb}archived to {where}")
    if removed:
        said.append(f"{removed} file(s) {verb}removed")
    return ", ".join(said) or None


def write_report(summary: IngestSummary | None, path: str, extra: dict | None = None) -> None:
    """The report of a run: `summary` is its ingest part, None for a run that ingested nothing (--validate
    or --fix-inconsistencies alone), whose report then says nothing about files."""
    target = Path(path)
    if target.suffix.lower() in (".md", ".markdown"):
        from benchmark_db.output import render

        text = ""
        if summary is not None:
            files = [{"path": o.path, "status": o.status, "kind": o.kind, "rows": o.rows, "reason": o.reason}
                     for o in summary.outcomes]
            text = render_summary(summary, "markdown")
            if files and not summary.dry_run:  # a dry run's summary lists every file already
                text += "\n## Files\n\n" + render(files, "markdown")
        # what the migration adds (merged artifacts, fixes, validation): a .md report is the whole result
        # too, not only its ingest part; None means the step did not run, [] that it found nothing
        for key, title in (("artifacts", "Artifacts"), ("fixes", "Fixes"), ("problems", "Validation problems")):
            items = (extra or {}).get(key)
            if items is not None and (items or key == "problems"):
                text += ("\n" if text else "") + f"## {title}\n\n" + (render(items, "markdown") if items
                                                                      else "none\n")
        if not text:
            text = "nothing was done\n"
    else:
        data = (summary or IngestSummary()).as_dict(with_files=True)
        if extra:
            data.update(extra)
        text = _json_pretty(data)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the report {path}: {exc.strerror or exc} (the ingest itself is committed)",
                         "pass --report a path in a writable folder") from exc
    log.info("wrote the report %s", target)


def _json_pretty(value) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=False, default=str) + "\n"
