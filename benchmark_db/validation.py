"""Consistency checks over ingested data, and the fixes that are safe to make without a person.

`find_problems(conn)` returns one dict per problem: orphans (a fact row whose model, hardware or run is
missing; a log row that says `ingested` but whose rows are gone), duplicates (one model under two spellings,
two result ids for one configuration, one content ingested under two paths), negative or impossible values,
throughput that disagrees with batch_size * 1000 / latency beyond a tolerance, and unit mistakes (a latency
figure stored in seconds or microseconds, latency figures of one row about 1000 times apart, memory stored in
bytes). `fix_problems(conn)` makes only fixes that lose nothing and need no judgement, all in one
transaction, and returns one dict per fix:

- latency figures recorded in seconds (or microseconds), each judged on its own (the average, each
  percentile, the samples by their mean; a median far below the mean is a skewed distribution, no unit
  mistake): scaled to ms where the row's own throughput and batch size prove which
  figures are in ms (or its total time over its iterations proves the average is); figures 1000 times apart
  with nothing outside them to say which are right are listed for a person, not scaled;
- memory recorded in bytes (over a terabyte "MB"): scaled to MB;
- a latency or throughput of exactly 0, which stands for "not measured": set to NULL;
- a fact row whose model or hardware row is missing but whose own name says what it is: the row is added;
- denormalised model_name / hardware_type that disagree with their dimension row: copied from it;
- an `ingested` log row whose rows are gone: the log row is dropped, so the next run ingests the file again.

Everything else is listed, not touched: the original documents stay in `source_documents` either way.

Every problem and fix also names its `source`: the input file its row came from (the run's `source_path`;
the logged path itself for an `ingested_files` row), or None where the row has none (written by the REST
API or a runner, a dimension row, a fact row whose run is missing), so that a person knows which file to open.
"""
from __future__ import annotations

from benchmark_db.connection import transaction

DEFAULT_TOLERANCE = 0.5  # throughput may differ from batch*1000/latency by up to 50% (overheads, warm-up)
_FACTS = (("performance_results", "result_id"), ("hardware_compatibility", "compatibility_id"),
          ("integration_test_results", "test_result_id"), ("web_platform_results", "result_id"))
_LATENCY_COLUMNS = ("average_latency_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
                    "latency_stddev_ms")


def _rows(conn, sql: str, params=None) -> list[tuple]:
    return conn.execute(sql, params or []).fetchall()


def _ratio_sql(factor: str) -> str:
    """SQL: throughput / (batch * factor / latency), the agreement of a row's three numbers."""
    return (f"throughput_items_per_second / (batch_size * {factor} / average_latency_ms)")


def _unit_case(tolerance: float) -> str:
    hi, lo = 1 + tolerance, 1 / (1 + tolerance)
    # a row whose total time over its iterations gives its latency in ms proves the latency's unit: a
    # throughput a thousand times off is then the wrong figure, and scaling the latency would corrupt it
    timed = ("total_time_seconds > 0 AND iterations > 0 AND isfinite(total_time_seconds) AND "
             f"total_time_seconds * 1000.0 / iterations / average_latency_ms BETWEEN {lo} AND {hi}")
    return (f"CASE WHEN {timed} THEN NULL "
            f"WHEN {_ratio_sql('1.0')} BETWEEN {lo} AND {hi} THEN 'seconds' "
            f"WHEN {_ratio_sql('1000000.0')} BETWEEN {lo} AND {hi} THEN 'microseconds' END")


# A latency figure that is 1000 times off (seconds or microseconds stored as ms) is told from a real spread by
# what the figures must satisfy in ms, judged against the row's mean latency:
# - the samples: their mean is the row's mean (within _BAND, the square root of 1000, which keeps each unit's
#   band apart from the next one's). Their median is no evidence: a few slow first calls put the mean far
#   above the median of a correct row (pytest-benchmark: 26, 16, 16 ms, then 0.02 ms each);
# - a percentile q: within the samples' range where the row has samples (it was computed from them); else at
#   most the Markov bound mean / (1 - q) (at least 1 - q of the samples reach it), and at least
#   mean - stddev * sqrt((1 - q) / q) (the least spread that puts a fraction q of the samples that far below
#   the mean), or mean / _BAND where the row has no stddev to allow for a skewed distribution.
_BAND = 1000 ** 0.5
_SPREAD_FIGURES = (("latency_p50_ms", 0.5), ("latency_p90_ms", 0.9), ("latency_p95_ms", 0.95),
                   ("latency_p99_ms", 0.99), ("latency_samples_ms", 0.5))
_UNITS = {1000.0: "seconds", 0.001: "microseconds"}


def _positive(column: str) -> str:
    return f"CASE WHEN {column} > 0 AND isfinite({column}) THEN {column} END"


def _shown(column: str, value: float) -> str:
    return f"{column} (median {value:g})" if column == "latency_samples_ms" else f"{column} {value:g}"


def _fitting(value: float, low: float, high: float) -> list[float]:
    """The factors (1, then 1000, then 1/1000) that bring `value` into [low, high]."""
    return [f for f in (1.0, 1000.0, 0.001) if low <= value * f <= high]


def _latency_verdicts(conn, tolerance: float) -> list[dict]:
    """Rows whose latency figures are not all in one unit, one dict each: `factors` ({column: 1000.0 or
    0.001}) where the row's throughput and batch size (or its total time over its iterations) say which
    figures are in ms, so that the others are 1000 times off; else `factors` None and `detail` says what
    disagrees (nothing outside the latency columns tells which side is right, or a figure fits no unit)."""
    hi, lo = 1 + tolerance, 1 / (1 + tolerance)
    expected = f"CASE WHEN {_COMPARABLE} THEN batch_size * 1000.0 / throughput_items_per_second END"
    percentiles = [_positive(c) for c, _ in _SPREAD_FIGURES[:4]]
    figures = ", ".join([_positive("average_latency_ms"), *percentiles, _positive("samples_mean"), expected])
    timed = ("total_time_seconds > 0 AND iterations > 0 AND isfinite(total_time_seconds) AND "
             f"total_time_seconds * 1000.0 / iterations / average_latency_ms BETWEEN {lo} AND {hi}")
    kept = "list_filter(latency_samples_ms, x -> x > 0 AND isfinite(x))"
    # the SQL picks the few rows whose figures (the samples by their mean) spread over more than one band;
    # Python judges those. The samples' mean is computed once per row, in a materialised step: written inline
    # it was evaluated in every place the figures appear (nine times), and the check took 213 s on a million
    # rows of 337 samples. Their median and range, which need a sort or more passes, only for the rows picked
    rows = _rows(conn, f"WITH m AS MATERIALIZED (SELECT * EXCLUDE (latency_samples_ms, metrics), "
                       f"list_avg({kept}) AS samples_mean FROM performance_results) "
                       f"SELECT result_id, {_positive('average_latency_ms')}, {', '.join(percentiles)}, "
                       f"{_positive('samples_mean')}, {_positive('latency_stddev_ms')}, {expected}, "
                       f"CASE WHEN {_COMPARABLE} THEN {_unit_case(tolerance)} END, coalesce({timed}, false) "
                       f"FROM m WHERE greatest({figures}) > {_BAND} * least({figures}) ORDER BY result_id")
    spans = {row_id: (median, low, high) for row_id, median, low, high in _rows(
        conn, f"SELECT result_id, list_median(k), list_min(k), list_max(k) FROM (SELECT result_id, {kept} AS k "
              "FROM performance_results JOIN (SELECT unnest(?::BIGINT[]) AS picked) ON result_id = picked)",
        [sorted({r[0] for r in rows})])} if rows else {}
    verdicts = []
    for row_id, average, *percentile_values, s_mean, stddev, expected_ms, average_unit, timed_ok in rows:
        s_median, s_min, s_max = spans.get(row_id, (None, None, None)) if s_mean is not None else (None,) * 3
        values = {"average_latency_ms": average, **dict(zip((c for c, _ in _SPREAD_FIGURES[:4]), percentile_values)),
                  "latency_samples_ms": s_median if s_mean is not None else None}
        factors: dict[str, float] = {}
        evidence = "the row's throughput and batch size"
        reference = "average_latency_ms"
        if average is None:
            mean = None
        elif average_unit is not None:  # the throughput proves the average wrong, as _unit_case says
            mean, factors[reference] = expected_ms, (1000.0 if average_unit == "seconds" else 0.001)
        elif timed_ok:  # proves the average right, whatever the throughput says
            mean, evidence = average, "the row's total time over its iterations"
        elif expected_ms is not None and lo <= average / expected_ms <= hi:
            mean = average
        else:
            mean = None
        anchored = mean is not None
        if not anchored:  # nothing outside the latency figures: judge them against the first one there is
            reference = next((c for c in ("average_latency_ms", "latency_samples_ms", "latency_p50_ms")
                              if values[c] is not None), None)
            if reference is None:
                continue
            mean = s_mean if reference == "latency_samples_ms" else values[reference]
        slack_hi, slack_lo = (hi, lo) if anchored else (1.0, 1.0)
        undecided: list[str] = []

        def judge(column, fits, anchored=anchored, factors=factors, undecided=undecided):
            if 1.0 in fits:  # where bands overlap (a wide tolerance or a wide spread) the figure is left as it is
                return
            if anchored and fits:
                factors[column] = fits[0]
            else:
                undecided.append(column)

        if s_mean is not None and reference != "latency_samples_ms":
            judge("latency_samples_ms", _fitting(s_mean, mean / _BAND * slack_lo, mean * _BAND * slack_hi))
        # the samples, once judged, are the measure of the percentiles computed from them
        sample_factor = None if s_mean is None or "latency_samples_ms" in undecided else \
            factors.get("latency_samples_ms", 1.0)
        for column, q in _SPREAD_FIGURES[:4]:
            value = values[column]
            if value is None or column == reference:
                continue
            # a percentile of more samples than the row keeps may lie outside their range in every unit: then
            # the mean judges it, as where there are no samples
            within = [] if sample_factor is None else _fitting(value, s_min * sample_factor * lo,
                                                               s_max * sample_factor * hi)
            if within:
                judge(column, within)
                continue
            floor = mean / _BAND
            if stddev is not None:  # a skewed distribution: as far below the mean as its stddev allows
                floor = min(floor, mean - stddev * hi * ((1 - q) / q) ** 0.5)
            judge(column, _fitting(value, floor * slack_lo, mean * max(_BAND, 1 / (1 - q)) * slack_hi))
        fixed = [values[c] * factors.get(c, 1.0) for c, _ in _SPREAD_FIGURES[:4] if values[c] is not None]
        if len(factors) > ("average_latency_ms" in factors) and fixed != sorted(fixed):
            undecided.extend(c for c in factors if c != "average_latency_ms")  # scaling would disorder them
        if undecided:
            listed = "; ".join(_shown(c, v) for c, v in values.items() if v is not None)
            why = ("nothing outside them (throughput and batch size, total time over iterations) tells which are "
                   "in ms" if not anchored else
                   f"{', '.join(dict.fromkeys(undecided))} fit neither ms nor a unit 1000 times off, judging by "
                   f"{evidence}")
            verdicts.append({"id": row_id, "factors": None,
                             "detail": f"latency figures disagree ({listed}): {why}; needs a person"})
        elif factors:
            # the spread moves with the figures it is computed with: the samples, else p50, else the average
            leader = next(c for c in ("latency_samples_ms", "latency_p50_ms", "average_latency_ms")
                          if values[c] is not None)
            if stddev is not None and leader in factors:
                factors["latency_stddev_ms"] = factors[leader]
                values["latency_stddev_ms"] = stddev
            factors = {c: factors[c] for c in values if c in factors}  # named in the columns' order
            verdicts.append({"id": row_id, "factors": factors, "values": values, "evidence": evidence})
    return verdicts


def _by_unit(factors: dict[str, float]) -> list[tuple[str, float, list[str]]]:
    return [(unit, factor, [c for c, f in factors.items() if f == factor]) for factor, unit in _UNITS.items()
            if factor in factors.values()]

# Kinds of the ingest-log rows of merged CI artifacts (.duckdb, .parquet): `benchmark_db_migration.py
# --migrate-ci` logs the first two, scripts/ci_benchmark_integrator.py the `ci-artifact-` ones. Their content
# is rows, not a document, so no original is kept for them and no run is made from them.
ARTIFACT_KINDS = ("database_artifact", "parquet_artifact", "ci-artifact-duckdb", "ci-artifact-parquet")
NOT_AN_ARTIFACT = (f"coalesce(kind, '') NOT IN ({', '.join(repr(k) for k in ARTIFACT_KINDS)}) "
                   "AND NOT starts_with(coalesce(kind, ''), 'ci-artifact-')")
# memory "in MB" above a terabyte is bytes only if, read as bytes, it is a believable amount (under a terabyte);
# anything larger is impossible either way, and scaling it would not make it right (nor stop the fix repeating)
_MEMORY_IN_BYTES = "memory_peak_mb > 1000000 AND memory_peak_mb / 1048576.0 <= 1000000"
_MEMORY_IMPOSSIBLE = "memory_peak_mb / 1048576.0 > 1000000"

# isfinite: NaN compares above every number in DuckDB, and a NaN or infinite value is reported on its own
_COMPARABLE = ("batch_size > 0 AND average_latency_ms > 0 AND throughput_items_per_second > 0 "
               "AND isfinite(average_latency_ms) AND isfinite(throughput_items_per_second)")
# a single inference that takes longer than a year did not happen (a number like 2**70 read as milliseconds)
_MAX_LATENCY_MS = 365 * 24 * 3600 * 1000.0
_NON_FINITE_TABLES = (*_FACTS, ("test_runs", "run_id"))


def find_problems_with_archive(conn, tolerance: float = DEFAULT_TOLERANCE) -> list[dict]:
    """find_problems over the live rows and those `--archive-data` moved to Parquet, on any connection.

    A writer's connection sees its live rows only: once archived, 17 of the legacy corpus's 20 problems no
    longer showed, while a copy merged from the database's Parquet export still listed all 20. Here the archive
    is shown under the tables' own names while the problems are found (temp views, dropped again, so that
    the writer's own INSERTs still reach its tables). A problem of an archived row is listed but not
    fixable: --fix-inconsistencies changes live rows only."""
    from benchmark_db.maintenance import archive

    shown = [] if archive.archive_shown(conn) else archive.show_archive(conn)
    try:
        problems = find_problems(conn, tolerance)
    finally:
        for table in shown:
            conn.execute(f"DROP VIEW IF EXISTS temp.main.{table}")
            conn.execute(f"DROP VIEW IF EXISTS temp.main.{table}_all")
    fixable = [p for p in problems if p["fixable"] and p["table"] in archive.ARCHIVED_TABLES]
    if not fixable or not archive.has_archive(conn):
        return problems
    catalog = conn.execute("SELECT current_database()").fetchone()[0].replace('"', '""')
    for table in {p["table"] for p in fixable}:
        column = archive.ID_COLUMNS[table]
        ids = [p["id"] for p in fixable if p["table"] == table]
        live = {r[0] for r in conn.execute(f'SELECT {column} FROM "{catalog}".main.{table} '
                                           f"WHERE {column} IN (SELECT unnest(?))", [ids]).fetchall()}
        for problem in fixable:
            if problem["table"] == table and problem["id"] not in live:
                problem["fixable"] = False
                problem["detail"] += " (an archived row: --fix-inconsistencies changes live rows only)"
    return problems


def find_problems(conn, tolerance: float = DEFAULT_TOLERANCE) -> list[dict]:
    problems: list[dict] = []

    def add(check, table, row_id, detail, fixable=False):
        problems.append({"check": check, "table": table, "id": row_id, "detail": detail, "fixable": fixable})

    # orphans; "fixable" only where fix_problems really rebuilds the missing row (its id is the hash of the
    # name a performance row carries), so that a fix run never leaves a "fixable" problem behind
    rebuildable_models, rebuildable_hardware = _rebuildable_dimensions(conn)
    for table, key in _FACTS:
        for row_id, model_id in _rows(conn, f"SELECT {key}, model_id FROM {table} WHERE model_id IS NOT NULL "
                                            "AND model_id NOT IN (SELECT model_id FROM models)"):
            add("orphan", table, row_id, f"model_id {model_id} is not in models", model_id in rebuildable_models)
        for row_id, hw in _rows(conn, f"SELECT {key}, hardware_id FROM {table} WHERE hardware_id IS NOT NULL "
                                      "AND hardware_id NOT IN (SELECT hardware_id FROM hardware_platforms)"):
            add("orphan", table, row_id, f"hardware_id {hw} is not in hardware_platforms",
                hw in rebuildable_hardware)
        for row_id, run in _rows(conn, f"SELECT {key}, run_id FROM {table} WHERE run_id IS NOT NULL "
                                       "AND run_id NOT IN (SELECT run_id FROM test_runs)"):
            add("orphan", table, row_id, f"run_id {run} is not in test_runs")
    for path, sha in _rows(conn, "SELECT path, sha256 FROM ingested_files WHERE status = 'ingested' AND rows > 0 "
                                 f"AND {NOT_AN_ARTIFACT} "
                                 "AND sha256 NOT IN (SELECT source_sha256 FROM test_runs "
                                 "WHERE source_sha256 IS NOT NULL)"):
        add("orphan", "ingested_files", path, f"logged as ingested but no run holds content {sha[:12]}", True)
    # merged CI artifacts (.duckdb, .parquet) are not documents: their rows are the original
    for path, sha in _rows(conn, "SELECT path, sha256 FROM ingested_files WHERE status <> 'failed' "
                                 f"AND {NOT_AN_ARTIFACT} AND sha256 IS NOT NULL "
                                 "AND sha256 NOT IN (SELECT sha256 FROM source_documents)"):
        add("orphan", "ingested_files", path, f"the original text ({sha[:12]}) is not stored")

    # duplicates
    for name, ids in _rows(conn, "SELECT lower(trim(model_name)), list(model_id ORDER BY model_id) FROM models "
                                 "GROUP BY 1 HAVING count(*) > 1"):
        add("duplicate", "models", ids[0], f"model {name!r} is stored under {len(ids)} ids: {ids}")
    for ids, in _rows(conn, "SELECT list(result_id ORDER BY result_id) FROM performance_results "
                            "GROUP BY run_id, model_id, hardware_id, test_case, batch_size, sequence_length, "
                            "precision HAVING count(*) > 1"):
        add("duplicate", "performance_results", ids[0], f"one configuration of one run has {len(ids)} results: "
                                                        f"{ids}")
    # the same measurement in several runs: a copy of a result file written out again (reformatted, so its
    # sha256 differs), or a run stored by a runner and again from its JSON; rows without a time are left out,
    # since only the time of measurement tells one measurement from another of the same figures
    for ids, runs, model, when in _rows(
            conn, "SELECT list(result_id ORDER BY result_id), count(DISTINCT run_id), any_value(model_name), "
                  "created_at FROM performance_results WHERE created_at IS NOT NULL "
                  "GROUP BY model_id, hardware_id, test_case, batch_size, sequence_length, precision, created_at, "
                  "is_simulated, average_latency_ms, throughput_items_per_second, memory_peak_mb "
                  "HAVING count(DISTINCT run_id) > 1"):
        add("duplicate", "performance_results", ids[0], f"the same result ({model}, measured {when}, the same "
                                                        f"figures) is stored in {runs} runs: {ids}")
    for sha, paths in _rows(conn, "SELECT sha256, list(path ORDER BY path) FROM ingested_files "
                                  f"WHERE status = 'ingested' AND {NOT_AN_ARTIFACT} "
                                  "GROUP BY sha256 HAVING count(*) > 1"):
        add("duplicate", "ingested_files", paths[0], f"content {sha[:12]} ingested under {len(paths)} paths")

    # negative or impossible values
    checks = [
        ("performance_results", "result_id", "average_latency_ms", "< 0"),
        ("performance_results", "result_id", "throughput_items_per_second", "< 0"),
        ("performance_results", "result_id", "memory_peak_mb", "< 0"),
        ("performance_results", "result_id", "total_time_seconds", "< 0"),
        ("performance_results", "result_id", "batch_size", "<= 0"),
        ("performance_results", "result_id", "sequence_length", "<= 0"),
        ("performance_results", "result_id", "iterations", "< 0"),
        ("performance_results", "result_id", "latency_stddev_ms", "< 0"),
        ("performance_results", "result_id", "latency_p50_ms", "< 0"),
        ("performance_results", "result_id", "latency_p90_ms", "< 0"),
        ("performance_results", "result_id", "latency_p95_ms", "< 0"),
        ("performance_results", "result_id", "latency_p99_ms", "< 0"),
        ("performance_results", "result_id", "warmup_iterations", "< 0"),
        ("hardware_compatibility", "compatibility_id", "compatibility_score", "< 0"),
        ("integration_test_results", "test_result_id", "execution_time_seconds", "< 0"),
        ("web_platform_results", "result_id", "load_time_ms", "< 0"),
        ("web_platform_results", "result_id", "inference_time_ms", "< 0"),
        ("web_platform_results", "result_id", "total_time_ms", "< 0"),
        ("web_platform_results", "result_id", "memory_usage_mb", "< 0"),
        ("test_runs", "run_id", "execution_time_seconds", "< 0"),
    ]
    for table, key, column, condition in checks:
        for row_id, value in _rows(conn, f"SELECT {key}, {column} FROM {table} WHERE {column} {condition} "
                                         f"AND isfinite({column})"):  # -inf: reported as not finite below
            add("impossible", table, row_id, f"{column} = {value}")
    # NaN and +-Infinity (JSON's NaN/Infinity literals, a CI artifact's floats) are no measurement; `< 0` and
    # `> x` tests miss NaN, so each floating-point column is asked on its own
    floats: dict[str, list[str]] = {}
    for table, column in _rows(conn, "SELECT table_name, column_name FROM information_schema.columns WHERE "
                                     "table_catalog = current_database() AND table_schema = 'main' "
                                     "AND data_type IN ('DOUBLE', 'FLOAT', 'REAL') ORDER BY table_name, "
                                     "ordinal_position"):
        floats.setdefault(table, []).append(column)
    for table, key in _NON_FINITE_TABLES:
        for column in floats.get(table, ()):
            for row_id, value in _rows(conn, f"SELECT {key}, {column} FROM {table} WHERE NOT isfinite({column})"):
                add("impossible", table, row_id, f"{column} = {value} (not a finite number)")
    for column in _LATENCY_COLUMNS:
        if column == "latency_stddev_ms":
            continue
        for row_id, value in _rows(conn, f"SELECT result_id, {column} FROM performance_results "
                                         f"WHERE isfinite({column}) AND {column} > {_MAX_LATENCY_MS}"):
            add("impossible", "performance_results", row_id, f"{column} = {value:g} ms (over a year)")
    for column in ("average_latency_ms", "throughput_items_per_second"):
        for row_id, in _rows(conn, f"SELECT result_id FROM performance_results WHERE {column} = 0"):
            add("impossible", "performance_results", row_id, f"{column} = 0 (a missing value stored as 0)", True)
    # each percentile at most the next one (p50 above p90 passed while only p50 and p99 were compared)
    present = "list_filter([latency_p50_ms, latency_p90_ms, latency_p95_ms, latency_p99_ms], x -> x IS NOT NULL)"
    for row_id, *percentiles in _rows(conn, "SELECT result_id, latency_p50_ms, latency_p90_ms, latency_p95_ms, "
                                            f"latency_p99_ms FROM performance_results WHERE {present} <> "
                                            f"list_sort({present})"):
        named = [(name, value) for name, value in zip(("p50", "p90", "p95", "p99"), percentiles) if value is not None]
        (low, low_value), (high, high_value) = next(
            (a, b) for a, b in zip(named, named[1:]) if a[1] > b[1])
        add("impossible", "performance_results", row_id, f"{low} {low_value} ms is above {high} {high_value} ms")
    for row_id, started, completed in _rows(conn, "SELECT run_id, started_at, completed_at FROM test_runs "
                                                  "WHERE completed_at < started_at"):
        add("impossible", "test_runs", row_id, f"completed {completed} before it started {started}")

    # unit mistakes and throughput that disagrees with batch size and latency
    hi, lo = 1 + tolerance, 1 / (1 + tolerance)
    for verdict in _latency_verdicts(conn, tolerance):
        if verdict["factors"] is None:
            add("unit", "performance_results", verdict["id"], verdict["detail"])
            continue
        for unit, _, columns in _by_unit(verdict["factors"]):
            shown = ", ".join(_shown(c, verdict["values"][c]) for c in columns)
            add("unit", "performance_results", verdict["id"], f"{shown} {'is' if len(columns) == 1 else 'are'} "
                                                              f"in {unit}, judging by {verdict['evidence']}", True)
    for row_id, ratio, batch, latency, tput in _rows(
            conn, f"SELECT result_id, {_ratio_sql('1000.0')}, batch_size, average_latency_ms, "
                  f"throughput_items_per_second FROM performance_results WHERE {_COMPARABLE} "
                  f"AND {_unit_case(tolerance)} IS NULL AND {_ratio_sql('1000.0')} NOT BETWEEN {lo} AND {hi}"):
        add("throughput", "performance_results", row_id,
            f"throughput {tput:g}/s disagrees with batch_size {batch} * 1000 / latency {latency:g} ms "
            f"= {batch * 1000 / latency:g}/s (ratio {ratio:.2f}, tolerance {tolerance:.0%})")
    for row_id, memory in _rows(conn, "SELECT result_id, memory_peak_mb FROM performance_results "
                                      f"WHERE {_MEMORY_IN_BYTES}"):
        add("unit", "performance_results", row_id, f"memory_peak_mb {memory:g} is in bytes (over a terabyte)",
            True)
    for row_id, memory in _rows(conn, "SELECT result_id, memory_peak_mb FROM performance_results "
                                      f"WHERE {_MEMORY_IMPOSSIBLE}"):
        add("impossible", "performance_results", row_id, f"memory_peak_mb = {memory:g} (over a terabyte even "
                                                         "read as bytes)")

    # denormalised names that disagree with their dimension rows
    for row_id, have, want in _rows(conn, "SELECT pr.result_id, pr.model_name, m.model_name FROM "
                                          "performance_results pr JOIN models m USING (model_id) "
                                          "WHERE pr.model_name IS DISTINCT FROM m.model_name"):
        add("inconsistent", "performance_results", row_id, f"model_name {have!r} but its model is {want!r}", True)
    for row_id, have, want in _rows(conn, "SELECT pr.result_id, pr.hardware_type, h.hardware_type FROM "
                                          "performance_results pr JOIN hardware_platforms h USING (hardware_id) "
                                          "WHERE pr.hardware_type IS DISTINCT FROM h.hardware_type"):
        add("inconsistent", "performance_results", row_id, f"hardware_type {have!r} but its hardware is {want!r}",
            True)
    return _with_sources(conn, problems)


_SOURCE_TABLES = {table: key for table, key in (*_FACTS, ("test_runs", "run_id"))}


def _with_sources(conn, items: list[dict]) -> list[dict]:
    """`items` (problems or fixes), each with `source` set: the input file its row came from, or None.

    One query per table over the listed ids, however many rows the tables hold or the list names."""
    sources: dict[tuple[str, object], str] = {}
    for table, key in _SOURCE_TABLES.items():
        ids = sorted({item["id"] for item in items if item["table"] == table})
        if not ids:
            continue
        via_run = "" if table == "test_runs" else " JOIN test_runs r USING (run_id)"
        column = "t.source_path" if table == "test_runs" else "r.source_path"
        for row_id, path in _rows(conn, f"SELECT t.{key}, {column} FROM {table} t{via_run} "
                                        f"JOIN (SELECT unnest(?::BIGINT[]) AS listed) w ON t.{key} = w.listed "
                                        f"WHERE {column} IS NOT NULL", [ids]):
            sources[table, row_id] = path
    for item in items:
        # an ingest-log row is the input file; its id is the path it was read from
        item["source"] = item["id"] if item["table"] == "ingested_files" else sources.get((item["table"], item["id"]))
    return items


def _rebuildable_dimensions(conn) -> tuple[dict[int, str], dict[int, str]]:
    """Missing models and hardware platforms that can be rebuilt exactly: {id: name} where a performance row
    names them and the id is that name's own stable id (anything else would need a person's judgement)."""
    from benchmark_db.identity import hardware_id_for, model_id_for
    from benchmark_db.names import normalize_hardware_type

    models = {model_id: name for model_id, name in _rows(
        conn, "SELECT DISTINCT model_id, model_name FROM performance_results WHERE model_name IS NOT NULL "
              "AND trim(model_name) <> '' AND model_id NOT IN (SELECT model_id FROM models)")
        if model_id_for(name) == model_id}
    hardware = {}
    for hw_id, kind in _rows(conn, "SELECT DISTINCT hardware_id, hardware_type FROM performance_results "
                                   "WHERE hardware_type IS NOT NULL AND hardware_id NOT IN "
                                   "(SELECT hardware_id FROM hardware_platforms)"):
        kind = normalize_hardware_type(kind)
        if kind and hardware_id_for(kind) == hw_id:
            hardware[hw_id] = kind
    return models, hardware


def fix_problems(conn, tolerance: float = DEFAULT_TOLERANCE) -> list[dict]:
    """Make the safe fixes (module docstring), in one transaction; return one dict per fix."""
    fixes: list[dict] = []

    def add(fix, table, row_id, detail):
        fixes.append({"fix": fix, "table": table, "id": row_id, "detail": detail})

    with transaction(conn):
        # only the figures proven 1000 times off are scaled; a row whose evidence is not enough stays a problem
        for verdict in _latency_verdicts(conn, tolerance):
            factors = verdict["factors"]
            if factors is None:
                continue
            sets = ", ".join(f"{c} = list_transform({c}, x -> x * {f})" if c == "latency_samples_ms"
                             else f"{c} = {c} * {f}" for c, f in factors.items())
            conn.execute(f"UPDATE performance_results SET {sets} WHERE result_id = ?", [verdict["id"]])
            done = "; ".join(f"{', '.join(cs)} {'was' if len(cs) == 1 else 'were'} in {unit}" for unit, _, cs
                             in _by_unit(factors))
            kept = [c for c, v in verdict["values"].items() if v is not None and c not in factors]
            add("unit", "performance_results", verdict["id"], f"{done}: converted to ms" + (
                f" ({', '.join(kept)} already in ms, judging by {verdict['evidence']})" if kept else ""))
        for row_id, memory in _rows(conn, "SELECT result_id, memory_peak_mb FROM performance_results "
                                          f"WHERE {_MEMORY_IN_BYTES}"):
            conn.execute("UPDATE performance_results SET memory_peak_mb = memory_peak_mb / 1048576.0 "
                         "WHERE result_id = ?", [row_id])
            add("unit", "performance_results", row_id, f"memory_peak_mb {memory:g} was in bytes: converted to MB")
        for column in ("average_latency_ms", "throughput_items_per_second"):
            for row_id, in _rows(conn, f"SELECT result_id FROM performance_results WHERE {column} = 0"):
                conn.execute(f"UPDATE performance_results SET {column} = NULL WHERE result_id = ?", [row_id])
                add("missing", "performance_results", row_id, f"{column} 0 (not measured) set to NULL")
        models, hardware = _rebuildable_dimensions(conn)
        from benchmark_db.names import FAMILY_MODALITY, family_of

        for model_id, name in sorted(models.items()):
            # the family and modality follow from the name, as when the model was first stored
            family = family_of(name)
            conn.execute("INSERT INTO models (model_id, model_name, model_family, modality) VALUES (?, ?, ?, ?)",
                         [model_id, name, family, FAMILY_MODALITY.get(family)])
            add("orphan", "models", model_id, f"added the missing model {name!r}")
        for hw_id, kind in sorted(hardware.items()):
            conn.execute("INSERT INTO hardware_platforms (hardware_id, hardware_type) VALUES (?, ?)", [hw_id, kind])
            add("orphan", "hardware_platforms", hw_id, f"added the missing hardware {kind!r}")
        for row_id, want in _rows(conn, "SELECT pr.result_id, m.model_name FROM performance_results pr "
                                        "JOIN models m USING (model_id) "
                                        "WHERE pr.model_name IS DISTINCT FROM m.model_name"):
            conn.execute("UPDATE performance_results SET model_name = ? WHERE result_id = ?", [want, row_id])
            add("inconsistent", "performance_results", row_id, f"model_name set to {want!r} from models")
        for row_id, want in _rows(conn, "SELECT pr.result_id, h.hardware_type FROM performance_results pr "
                                        "JOIN hardware_platforms h USING (hardware_id) "
                                        "WHERE pr.hardware_type IS DISTINCT FROM h.hardware_type"):
            conn.execute("UPDATE performance_results SET hardware_type = ? WHERE result_id = ?", [want, row_id])
            add("inconsistent", "performance_results", row_id, f"hardware_type set to {want!r} from hardware")
        for path, in _rows(conn, "SELECT path FROM ingested_files WHERE status = 'ingested' AND rows > 0 AND "
                                 f"{NOT_AN_ARTIFACT} AND "
                                 "sha256 NOT IN (SELECT source_sha256 FROM test_runs "
                                 "WHERE source_sha256 IS NOT NULL)"):
            conn.execute("DELETE FROM ingested_files WHERE path = ?", [path])
            add("orphan", "ingested_files", path, "its rows are gone: log row dropped, the next run ingests it again")
    return _with_sources(conn, fixes)
