"""benchmark_db_query.py, QA round 16: --threshold nan/inf switched the regression gate off; --sql printed
HUGEINT and DECIMAL as floats and a DATE as a timestamp, and CSV wrote inf but not NaN; --regression-check
wrote markdown under --output x.html; options of other actions were silently ignored; a pandas warning
leaked to stderr for every TIMESTAMPTZ column."""
from __future__ import annotations

import csv
import io
import json
import math
import warnings

import pytest

from tests.test_query import run


# ------------------------------------------------------------------------ 1. non-finite thresholds
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5"])
def test_threshold_that_is_not_a_finite_percentage_is_refused(sample_db_path, value, capsys):
    code, out, err = run(capsys, "--db", sample_db_path, "--regression-check", "--reference-db", sample_db_path,
                         f"--threshold={value}")
    assert (code, out) == (2, "")
    assert err.startswith("error DB000: --threshold must be a finite percentage >= 0") and err.count("\n") == 1


@pytest.mark.parametrize("value", ["nan", "inf", "0", "1"])
def test_alpha_outside_0_1_is_refused(sample_db_path, value, capsys):
    code, out, err = run(capsys, "--db", sample_db_path, "--regression-check", "--reference-db", sample_db_path,
                         f"--alpha={value}")
    assert (code, out) == (2, "") and err.startswith("error DB000: --alpha must lie between 0 and 1")


@pytest.mark.parametrize("kwargs", [{"threshold_pct": math.nan}, {"threshold_pct": math.inf},
                                    {"alpha": math.nan}, {"last_days": math.nan}, {"last_days": math.inf}])
def test_library_refuses_non_finite_settings(sample_db_path, kwargs):
    from benchmark_db import regression
    from benchmark_db.connection import connect
    from benchmark_db.errors import UsageError

    with connect(sample_db_path, read_only=True) as conn, pytest.raises(UsageError):
        regression.regression_check(conn, **kwargs)


# ------------------------------------------------------------------- 2. exact numbers, dates, NaN/inf
EXACT_SQL = ("SELECT 1648877304854091789993::HUGEINT AS h, -170141183460469231731687303715884105727::HUGEINT - 1 AS lo, "
             "12345678901234567890.123456789::DECIMAL(38,9) AS d, 1.10::DECIMAL(18,2) AS d2, "
             "NULL::DECIMAL(5,1) AS dn, NULL::HUGEINT AS hn, DATE '2025-03-01' AS day, NULL::DATE AS no_day, "
             "'nan'::DOUBLE AS n, 'inf'::DOUBLE AS i, '-inf'::DOUBLE AS ni, NULL::DOUBLE AS z, 0.5::DOUBLE AS f")


def test_sql_keeps_hugeint_decimal_and_date_exact_in_csv(sample_db_path, capsys):
    code, out, err = run(capsys, "--db", sample_db_path, "--sql", EXACT_SQL, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows == [{"h": "1648877304854091789993", "lo": "-170141183460469231731687303715884105728",
                     "d": "12345678901234567890.123456789", "d2": "1.10", "dn": "", "hn": "", "day": "2025-03-01",
                     "no_day": "", "n": "", "i": "", "ni": "", "z": "", "f": "0.5"}]


def test_sql_keeps_hugeint_decimal_and_date_exact_in_json(sample_db_path, capsys):
    import decimal

    code, out, err = run(capsys, "--db", sample_db_path, "--sql", EXACT_SQL, "--format", "json")
    assert code == 0, err
    assert '"d": 12345678901234567890.123456789,' in out and '"d2": 1.10,' in out  # numbers, all digits
    (row,) = json.loads(out, parse_float=decimal.Decimal)
    assert row == {"h": 1648877304854091789993, "lo": -(2**127), "d": decimal.Decimal("12345678901234567890.123456789"),
                   "d2": decimal.Decimal("1.10"), "dn": None, "hn": None, "day": "2025-03-01", "no_day": None,
                   "n": None, "i": None, "ni": None, "z": None, "f": decimal.Decimal("0.5")}


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_sql_keeps_hugeint_decimal_and_date_exact_for_people(sample_db_path, fmt, capsys):
    code, out, err = run(capsys, "--db", sample_db_path, "--sql", EXACT_SQL, "--format", fmt)
    assert code == 0, err
    digits = out.replace(",", "")  # the HTML page groups thousands
    assert "1648877304854091789993" in digits and "12345678901234567890.123456789" in digits
    assert "2025-03-01" in out and "2025-03-01T" not in out and "00:00:00" not in out
    assert "e+21" not in out and "e+38" not in out


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_sql_uhugeint_is_exact(sample_db_path, fmt, capsys):
    # (.df() has no NumPy type for UHUGEINT at all: the query failed with DB004)
    code, out, err = run(capsys, "--db", sample_db_path, "--sql",
                         "SELECT 340282366920938463463374607431768211455::UHUGEINT AS u", "--format", fmt)
    assert code == 0, err
    assert "340282366920938463463374607431768211455" in out


def test_sql_duplicate_column_names_and_intervals_still_render(sample_db_path, capsys):
    code, out, err = run(capsys, "--db", sample_db_path, "--sql",
                         "SELECT 1::HUGEINT AS a, 2.5::DECIMAL(3,1) AS a, INTERVAL 14 MONTH AS a", "--format", "csv")
    assert code == 0, err
    assert out.splitlines() == ["a,a_1,a_2", "1,2.5,1 year 2 months"]


# ---------------------------------------------------------------- 3. --regression-check's output formats
@pytest.mark.parametrize("name", ["reg.html", "reg.csv", "reg.txt", "reg.htm"])
def test_regression_output_extension_it_does_not_write_is_refused_before_work(sample_db_path, tmp_path, name,
                                                                              capsys):
    target = tmp_path / name
    code, out, err = run(capsys, "--db", sample_db_path, "--regression-check", "--reference-db",
                         str(tmp_path / "missing.duckdb"), "--output", str(target))
    # DB000 (exit 2), not DB001 for the missing reference: refused before any database is opened
    assert (code, out) == (2, "") and err.startswith("error DB000: --regression-check writes markdown or json")
    assert name in err and not target.exists()


@pytest.mark.slow  # a regression check: about half a second
def test_regression_output_extension_picks_json_or_markdown(sample_db_path, tmp_path, capsys):
    code, _, err = run(capsys, "--db", sample_db_path, "--regression-check", "--reference-db", sample_db_path,
                       "--output", str(tmp_path / "reg.JSON"))
    assert code == 0, err
    assert json.loads((tmp_path / "reg.JSON").read_text())["has_regression"] is False
    code, _, err = run(capsys, "--db", sample_db_path, "--regression-check", "--reference-db", sample_db_path,
                       "--output", str(tmp_path / "reg.md"))
    assert code == 0, err
    assert (tmp_path / "reg.md").read_text().startswith("### ")


# ------------------------------------------------------------------- 4. options of other actions
@pytest.mark.parametrize("argv, refused, applies", [
    (["--sql", "SELECT 1 AS one", "--alpha", "0.5", "--threshold", "50"], "--threshold, --alpha",
     "--regression-check only"),
    (["--sql", "SELECT 1 AS one", "--metric", "latency"], "--metric", "--report, --compare-hardware"),
    (["--sql", "SELECT 1 AS one", "--model", "bert"], "--model", "--report"),
    (["--report", "performance", "--reference-db", "x.duckdb", "--threshold", "5"], "--reference-db, --threshold",
     "--regression-check only"),
    (["--compare-hardware", "--last-days", "4"], "--last-days", "--regression-check only"),
    (["--compare-models", "--alpha", "0.05"], "--alpha", "--regression-check only"),
    (["--compatibility-matrix", "--metric", "latency"], "--metric", "--report"),
    (["--regression-check", "--since", "2025-01-01"], "--since", "--compatibility-matrix"),
])
def test_options_of_other_actions_are_refused(sample_db_path, argv, refused, applies, capsys):
    code, out, err = run(capsys, "--db", sample_db_path, *argv, "--format", "json")
    assert (code, out) == (2, "")
    action = argv[0]
    assert err.startswith(f"error DB000: {action} does not take {refused};"), err
    assert applies in err and err.count("\n") == 1


def test_options_of_the_chosen_action_are_still_taken(sample_db_path, capsys):
    code, out, err = run(capsys, "--db", sample_db_path, "--compare-hardware", "--model", "bert-base-uncased",
                         "--metric", "latency", "--include-simulated", "--format", "json")
    assert code == 0, err
    assert json.loads(out)


# ----------------------------------------------------------------------- 5. TIMESTAMPTZ warning
def test_timestamptz_column_prints_no_pandas_warning(sample_db_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # whatever pytest's configuration says
        code, out, err = run(capsys, "--db", sample_db_path, "--sql",
                             "SELECT TIMESTAMPTZ '2025-03-01 10:00:00+00' AS t", "--format", "csv")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "t" and out.splitlines()[1].startswith("2025-03-01")


def test_a_list_of_decimals_is_not_taken_for_a_decimal(sample_db_path, capsys):
    """`[1.5]` is DECIMAL(2,1)[]: read as one DECIMAL, its text '[1.5]' failed as 'unexpected InvalidOperation'."""
    code, out, err = run(capsys, "--db", sample_db_path, "--sql", "SELECT [1.5] AS one, 2.25 AS two", "--format", "json")
    assert code == 0, err
    assert json.loads(out) == [{"one": [1.5], "two": 2.25}]
