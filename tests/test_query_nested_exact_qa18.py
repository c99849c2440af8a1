"""`benchmark_db_query.py --sql` keeps a DECIMAL or HUGEINT exact inside a list, struct or map too (session 15):
a list of DECIMAL(38,9) came out as floats (12345678901234567890.123456789 read 1.234567890123457e+19), and
the table, markdown and HTML formats stopped with a TypeError on a Decimal inside a struct."""
from __future__ import annotations

import decimal
import json

import pytest

import benchmark_db_query
from benchmark_db import output

BIG = "12345678901234567890.123456789"
NESTED_SQL = (f"SELECT [{BIG}::DECIMAL(38,9), NULL] AS l, "
              "{'h': 170141183460469231731687303715884105727::HUGEINT, 'd': 0.000000001::DECIMAL(18,9), "
              "'x': 0.1::DOUBLE} AS s, map([1], [2.50::DECIMAL(4,2)]) AS m, NULL::DECIMAL(4,2)[] AS n, "
              "[1.5::DOUBLE, 'nan'::DOUBLE] AS f")


@pytest.fixture
def frame():
    import duckdb

    conn = duckdb.connect()  # the query needs no tables
    try:
        yield benchmark_db_query.run_sql(conn, NESTED_SQL)
    finally:
        conn.close()


def test_nested_decimals_and_hugeints_keep_every_digit_in_json(frame):
    row = json.loads(output.to_json(frame), parse_float=decimal.Decimal)[0]
    assert row["l"] == [decimal.Decimal(BIG), None]
    assert row["s"] == {"h": 2**127 - 1, "d": decimal.Decimal("0.000000001"), "x": decimal.Decimal("0.1")}
    assert row["m"] == {"1": decimal.Decimal("2.5")} and row["n"] is None
    assert row["f"] == [decimal.Decimal("1.5"), None]  # untouched: no DECIMAL in it, NaN is null as before


def test_every_format_writes_nested_exact_numbers(frame):
    assert f"[{BIG}, null]" in output.to_csv(frame)
    for text in (output.to_table(frame), output.to_markdown(frame)):
        assert f"[{BIG}, null]" in text and "170141183460469231731687303715884105727" in text
    page = output.render(frame, "html")
    assert f"[{BIG}, null]" in page and "170141183460469231731687303715884105727" in page
