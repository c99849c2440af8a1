"""QA 17: DECIMAL values stay exact everywhere a result is written as data.

POST /query rounded a DECIMAL with a fraction to a float (12345678901234567890.123456789 came back as
12345678901234567000.0) while `benchmark_db_query.py --sql --format json` wrote all its digits; now both
write the digits as a JSON number, HUGEINT stays exact, and ordinary results still go through orjson. The
query tool (and /query) wrote a zero or small DECIMAL in str()'s exponent form (`0E-9`, `1.00E-7`); now as
DuckDB prints it (`0.000000000`, `0.000000100`).
"""
from __future__ import annotations

import decimal
import http.client
import json
import os
import shutil

import pytest

from benchmark_db import output

BIG = "12345678901234567890.123456789"
EXACT_SQL = (f"SELECT {BIG}::DECIMAL(38,9) AS d, -0.50::DECIMAL(4,2) AS neg, 0::DECIMAL(38,9) AS zero, "
             "1e-7::DECIMAL(38,9) AS tiny, NULL::DECIMAL(5,1) AS dn, 5::DECIMAL(18,0) AS whole, "
             f"[{BIG}::DECIMAL(38,9), NULL] AS l, {{'a': 2.25::DECIMAL(5,2)}} AS s, "
             "170141183460469231731687303715884105727::HUGEINT AS h, -1267650600228229401496703205376::HUGEINT AS lo, "
             "'nan'::DOUBLE AS n, 0.5::DOUBLE AS f")
EXPECTED_ROW = [decimal.Decimal(BIG), decimal.Decimal("-0.50"), decimal.Decimal("0E-9"), decimal.Decimal("1E-7"), None,
                5, [decimal.Decimal(BIG), None], {"a": decimal.Decimal("2.25")}, 2**127 - 1, -(2**100), None,
                decimal.Decimal("0.5")]


@pytest.fixture
def client(db_path):
    from fastapi.testclient import TestClient

    from benchmark_db_server import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(db_path=db_path, idle_release=0.1))) as test_client:
        yield test_client


def _check_exact(text: str) -> None:
    # the digits as written, as numbers (not strings), in plain notation
    assert f"[{BIG},-0.50,0.000000000,0.000000100,null,5,[{BIG},null],{{\"a\":2.25}}," in text, text
    assert "170141183460469231731687303715884105727,-1267650600228229401496703205376,null,0.5]" in text, text
    assert "e+19" not in text and "E-" not in text
    body = json.loads(text, parse_float=decimal.Decimal)
    assert body["rows"] == [EXPECTED_ROW]
    assert body["types"][:2] == ["DECIMAL(38,9)", "DECIMAL(4,2)"] and body["types"][8] == "HUGEINT"
    assert body["row_count"] == 1


@pytest.mark.slow  # a real uvicorn process: over a second
def test_real_server_query_returns_decimals_with_all_their_digits(db_path):
    from tests.test_api_server import Server

    server = Server(db_path, "--idle-release", "0.2")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        conn.request("POST", "/query", json.dumps({"sql": EXACT_SQL}), {"Content-Type": "application/json"})
        response = conn.getresponse()
        text = response.read().decode()
        conn.close()
    finally:
        server.stop()
    assert response.status == 200, text
    assert response.getheader("content-type") == "application/json"
    _check_exact(text)


def test_query_decimals_are_exact_and_agree_with_the_query_tool(client, sample_db_path):
    response = client.post("/query", json={"sql": EXACT_SQL})
    assert response.status_code == 200, response.text
    _check_exact(response.text)
    # the same digits as `benchmark_db_query.py --sql --format json`
    import benchmark_db_query
    from benchmark_db.connection import connect

    conn = connect(sample_db_path, read_only=True)
    try:
        cli = output.to_json(benchmark_db_query.run_sql(conn, EXACT_SQL.split(", [")[0]))  # the scalar columns
    finally:
        conn.close()
    assert f'"d": {BIG},' in cli and '"neg": -0.50,' in cli and '"zero": 0.000000000,' in cli
    assert '"tiny": 0.000000100,' in cli
    # a bound parameter's value round-trips too
    bound = client.post("/query", json={"sql": "SELECT ?::DECIMAL(38,9) AS d", "params": [BIG]})
    assert bound.status_code == 200 and f"[[{BIG}]]" in bound.text


def test_query_schema_says_how_numbers_come_back(client):
    schema = client.get("/openapi.json").json()
    rows = schema["components"]["schemas"]["QueryOut"]["properties"]["rows"]
    assert rows["type"] == "array" and "DECIMAL" in rows["description"] and "all" in rows["description"]
    answer = schema["paths"]["/query"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/QueryOut"}


def test_exact_json_safe_keeps_ordinary_values_plain():
    import orjson

    from benchmark_db_server import exact_json_safe

    values = [1, -(2**63), 2**63 - 1, 1.5, float("inf"), "x", None, True, [1, {"k": 2.0}]]
    # ordinary values are what json_safe makes of them (orjson writes them natively, no Fragment)
    assert [exact_json_safe(v) for v in values] == [1, -(2**63), 2**63 - 1, 1.5, None, "x", None, True,
                                                    [1, {"k": 2.0}]]
    assert orjson.dumps([exact_json_safe(2**64), exact_json_safe(decimal.Decimal("NaN")),
                         exact_json_safe(decimal.Decimal("-0E-3"))]) == b"[18446744073709551616,null,-0.000]"


def test_query_tool_writes_a_small_decimal_in_plain_notation():
    rows = [{"zero": decimal.Decimal("0E-9"), "tiny": decimal.Decimal("1.00E-7"), "big": decimal.Decimal(BIG),
             "nan": decimal.Decimal("NaN")}]
    text = output.to_json(rows)
    assert '"zero": 0.000000000,' in text and '"tiny": 0.000000100,' in text and f'"big": {BIG},' in text
    assert json.loads(text, parse_float=decimal.Decimal)[0]["zero"] == 0 and '"nan": null' in text
    assert output.to_csv(rows).splitlines() == ["zero,tiny,big,nan", f"0.000000000,0.000000100,{BIG},"]
    table = output.to_table(rows)
    assert "0.000000000" in table and "0.000000100" in table and "E-" not in table
    assert "0.000000100" in output.to_markdown(rows)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DECIMAL_SQL = ("SELECT * FROM (VALUES ('a', 10.500::DECIMAL(10,3), 10.5::DOUBLE), ('b', 9.250, 9.25), "
               "('c', 100.125, 100.125), ('d', -2.000, -2.0), ('e', NULL, NULL)) t(name, d, f)")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install -y chromium)")
def test_query_page_sorts_a_decimal_column_as_numbers_in_chromium(sample_db_path, tmp_path, capsys):
    """`--sql ... --format html`: a DECIMAL column sorted as text (10.500 < 100.125 < 9.250, -2.000 first); it
    now sorts as the DOUBLE beside it does, and shows the same exact digits."""
    from playwright.sync_api import sync_playwright

    import benchmark_db_query

    target = tmp_path / "query.html"
    assert benchmark_db_query.main(["--db", sample_db_path, "--sql", DECIMAL_SQL, "--format", "html",
                                    "--output", str(target)]) == 0, capsys.readouterr().err
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new",
                                                                     "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(target.as_uri())

            def order(column: str) -> list[str]:
                page.locator("table.sortable th", has_text=column).first.click()
                return page.evaluate("Array.from(document.querySelectorAll('table.sortable tbody tr'))"
                                     ".map(r => r.cells[0].textContent)")

            assert order("f") == ["d", "b", "a", "c", "e"]  # the DOUBLE column, ascending, blank last
            assert order("d") == ["d", "b", "a", "c", "e"]  # the DECIMAL column sorts the same way
            assert order("d") == ["c", "a", "b", "d", "e"]  # and descending
            texts = page.evaluate("Array.from(document.querySelectorAll('table.sortable tbody tr'))"
                                  ".map(r => r.cells[1].textContent)")
            assert texts == ["100.125", "10.500", "9.250", "-2.000", ""]  # exact digits, as DuckDB prints them
        finally:
            browser.close()
    assert errors == []
