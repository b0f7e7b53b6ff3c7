"""The fact loader (issue 15): a good file goes in by one COPY of its raw bytes and set-based checks
(pnldb.loaders.fact_stage); whenever that way is not sure, the row checks read the file again, to report
its problems with their lines and columns, or to stage a good file the fast way cannot read as is. Both
store the same facts; the fact table's foreign key to use_cases is replaced by set-based guarantees."""
from __future__ import annotations

import datetime as dt
import io
import random
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from pnldb import api
from pnldb.errors import PnlError
from pnldb.loaders import fact_stage
from pnldb.loaders import facts as facts_loader

DATA = Path(__file__).parent / "data"
HEADER = "use_case_id,pnl_date,category_code,daily_amount,wtd_amount,ytd_amount,scenario"
BOOKS = ["BOOK_RATES_1", "BOOK_RATES_2", "BOOK_FX_1", "BOOK_FX_2", "DESK_FX", "NOT_A_NODE"]


def write(tmp_path, name, text) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


@pytest.fixture
def two_use_cases(conn):
    api.load_hierarchy(conn, DATA / "hierarchy.csv", "STERLING")
    return (api.create_use_case(conn, "Fast", "STERLING")["use_case_id"],
            api.create_use_case(conn, "Slow", "STERLING")["use_case_id"])


@pytest.fixture
def fast_only(monkeypatch):
    """The row checks' way in fails the test: the file must go the set-based way."""
    def refuse(*args, **kwargs):
        raise AssertionError("the file went the row checks' way")
    monkeypatch.setattr(facts_loader, "_row_stage", refuse)


def load_the_slow_way(monkeypatch, conn, path, use_case, **kwargs):
    with monkeypatch.context() as m:
        m.setattr(fact_stage, "stage", lambda *args, **kw: None)  # the old loader: the row checks only
        return api.load_facts(conn, path, use_case, **kwargs)


def error_of(load) -> str:
    with pytest.raises(PnlError) as info:
        load()
    return str(info.value)


def stored(conn, use_case):
    return conn.execute(
        """SELECT pnl_date, scenario, category_code, currency, daily_amount::text, wtd_amount::text,
                  ytd_amount::text, amount::text, attributes FROM fact_pnl_entries WHERE use_case_id = %s
           ORDER BY id""", (use_case,)).fetchall()


def without_ids(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("use_case_id", "use_case_name", "load_id")}


def test_whitespace_is_what_str_strip_removes():
    assert set(fact_stage.WHITESPACE) == {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}


# --------------------------------------------------------------------------------------------------
# a large file with bad cells spread through it

def test_bad_cells_spread_through_a_large_file_are_the_first_twenty_in_file_order(
        conn, two_use_cases, tmp_path, monkeypatch):
    fast, slow = two_use_cases
    bad = {  # line -> (cells of the row after use_case_id, expected message)
        1_234: ("2025-02-30,BOOK_FX_1,1,2,3,ACTUAL", "column pnl_date: '2025-02-30' is not a valid date"),
        2_000: ("2025-12-24,BOOK_FX_1,1.234,2,3,ACTUAL", "column daily_amount: '1.234' has more than 2 decimal places"),
        3_001: ("2025-12-24,BOOK_FX_1,1,2,3,BUDGET", "column scenario: 'BUDGET' is not a scenario (expected ACTUAL "
                                                     "or PRIOR)"),
        4_500: ("2025-12-24, ,1,2,3,ACTUAL", "column category_code: is blank; expected a node_id of the structure"),
        5_555: ("2025-12-24,BOOK_FX_1,1,2,10000000000000000,ACTUAL",
                "column ytd_amount: '10000000000000000' is out of range for numeric(18,2) (|amount| must be below "
                "1e16)"),
        6_000: ("2025-12-24,BOOK_FX_1,1,,3,ACTUAL", "column wtd_amount: is empty; expected an amount"),
        7_007: ("2025-13-01,BOOK_FX_1,1.999,2,3,BUDGET", "column pnl_date: '2025-13-01' is not a valid date"),
        8_100: ("2025-12-24,BOOK_FX_1,1,2,NaN,ACTUAL", "column ytd_amount: 'NaN' is not a number"),
        9_000: ("2025-12-24,BOOK_FX_1,-Infinity,2,3,ACTUAL", "column daily_amount: '-Infinity' is not a number"),
        9_999: ("24/12/2025,BOOK_FX_1,1,2,3,ACTUAL",
                "column pnl_date: '24/12/2025' is not a date (expected YYYY-MM-DD)"),
        11_000: ("2025-12-24," + "X" * 1001 + ",1,2,3,ACTUAL",
                 "column category_code: '" + "X" * 40 + "...' is 1,001 bytes long; an id is at most 1,000 bytes "
                 "(UTF-8)"),
        12_345: ("2025-12-24,BOOK_FX_1,1,2.001,3,prior", "column wtd_amount: '2.001' has more than 2 decimal places"),
    }
    for k in range(13):  # the same bad amount on 13 more lines: 25 bad rows, 20 listed
        bad[15_000 + 1_000 * k] = ("2025-12-24,BOOK_FX_1,5.555,2,3,ACTUAL",
                                   "column daily_amount: '5.555' has more than 2 decimal places")
    rng = random.Random(15)
    lines = [HEADER]
    for line in range(2, 30_002):
        if line in bad:
            lines.append("," + bad[line][0])
        else:
            lines.append(f",2025-12-24,{rng.choice(BOOKS)},{rng.randint(-10**6, 10**6) / 100},{rng.randint(0, 99)},"
                         f"-{rng.randint(0, 10**9)}.{rng.randint(0, 9)},{rng.choice(['ACTUAL', 'PRIOR'])}")
    path = write(tmp_path, "big.csv", "\n".join(lines) + "\n")
    assert path.stat().st_size > fact_stage.BLOCK  # more than one block
    expected = "\n".join([f"{path}: 25 bad rows, nothing loaded",
                          *(f"  line {line}, {bad[line][1]}" for line in sorted(bad)[:20]), "  and 5 more"])
    assert error_of(lambda: load_the_slow_way(monkeypatch, conn, path, slow)) == expected
    verdicts = []
    with monkeypatch.context() as m:
        staged = fact_stage.stage
        m.setattr(fact_stage, "stage", lambda *a, **k: verdicts.append(staged(*a, **k)) or verdicts[-1])
        assert error_of(lambda: api.load_facts(conn, path, fast)) == expected
    assert verdicts == [None]  # the set-based way staged the file, found it bad, and left the messages to the rows
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM fact_loads").fetchone()[0] == 0


def test_one_bad_cell_deep_in_a_large_file_is_one_line(conn, two_use_cases, tmp_path):
    rows = [f",2025-12-24,BOOK_FX_1,{i}.25,1,1,ACTUAL" for i in range(40_000)]
    rows[33_333] = ",2025-12-24,BOOK_FX_1,1,1,1.005,ACTUAL"
    path = write(tmp_path, "f.csv", "\n".join([HEADER, *rows]) + "\n")
    assert error_of(lambda: api.load_facts(conn, path, two_use_cases[0])) == (
        f"{path}: line 33335, column ytd_amount: '1.005' has more than 2 decimal places; nothing loaded")


# --------------------------------------------------------------------------------------------------
# files the raw COPY cannot read as is: the row checks' way, with the csv module's line numbers

def test_a_quoted_field_spanning_lines_keeps_the_line_numbers(conn, two_use_cases, tmp_path):
    path = write(tmp_path, "f.csv", f"{HEADER},desk_name\n"
                                    ',2025-12-24,BOOK_FX_1,1,1,1,ACTUAL,"two\nlines"\n'      # lines 2-3
                                    ",2025-12-24,BOOK_FX_1,1,1,1,BUDGET,plain\n"             # line 4
                                    ',2025-12-24,BOOK_FX_1,1.234,1,1,ACTUAL,"three\n\nlines"\n'  # lines 5-7
                                    ",2025-12-24, ,1,1,1,ACTUAL,x\n")                        # line 8
    assert error_of(lambda: api.load_facts(conn, path, two_use_cases[0])).splitlines() == [
        f"{path}: 3 bad rows, nothing loaded",
        "  line 4, column scenario: 'BUDGET' is not a scenario (expected ACTUAL or PRIOR)",
        "  line 7, column daily_amount: '1.234' has more than 2 decimal places",
        "  line 8, column category_code: is blank; expected a node_id of the structure"]


IRREGULAR = {
    "quotes": f'{HEADER},book\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL,"B, 1"\n,2025-12-24,BOOK_FX_1,1,1,1,PRIOR,B2\n',
    "blank line inside": f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n\n,2025-12-24,BOOK_FX_2,2,2,2,ACTUAL\n",
    "a cell of spaces as amount": f"{HEADER},amount\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL,  \n",
    "unicode spaces around an amount": f"{HEADER}\n,2025-12-24,BOOK_FX_1,\u00a01.5\u3000,1,1,ACTUAL\n",
    "short Excel row": f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n,,,\n",
    "mixed line ends": f"{HEADER}\r\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\r\n,2025-12-24,BOOK_FX_2,2,2,2,PRIOR\n",
    "an exponent PostgreSQL refuses": f"{HEADER}\n,2025-12-24,BOOK_FX_1,0e2000,1,1,ACTUAL\n",
    "a line of backslash-dot": f"{HEADER},book\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL,x\n\\.\n"
                               ",2025-12-24,BOOK_FX_2,2,2,2,PRIOR,y\n",
}


@pytest.mark.parametrize("case", sorted(IRREGULAR))
def test_files_the_raw_copy_cannot_read_load_as_the_csv_module_reads_them(conn, two_use_cases, tmp_path, monkeypatch,
                                                                         case):
    fast, slow = two_use_cases
    path = write(tmp_path, "f.csv", IRREGULAR[case])
    try:
        expected = without_ids(load_the_slow_way(monkeypatch, conn, path, slow))
    except PnlError as exc:
        assert error_of(lambda: api.load_facts(conn, path, fast)) == str(exc)
        return
    assert without_ids(api.load_facts(conn, path, fast)) == expected
    assert stored(conn, fast) == stored(conn, slow)


def test_bad_bytes_after_the_first_block_are_reported_the_csv_modules_way(conn, two_use_cases, tmp_path):
    rows = [f",2025-12-24,BOOK_FX_1,{i}.25,1,1,ACTUAL" for i in range(30_000)]
    rows[25_000] = ",2025-12-24,BOOK_FX_1,1,1,1,ACT\x00UAL"
    path = write(tmp_path, "f.csv", "\n".join([HEADER, *rows]) + "\n")
    assert error_of(lambda: api.load_facts(conn, path, two_use_cases[0])) == (
        f"{path}: line 25002, column scenario: contains a NUL byte; nothing loaded")
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 0


# --------------------------------------------------------------------------------------------------
# both ways store the same facts and summarise them alike

def random_file(rng: random.Random, rows: int, crlf: bool = False) -> str:
    header = f"{HEADER},amount,currency,Book,region"
    forms = ["{}", "{}.5", "{}.25", "{}.50", "+{}", "{}.", " {}.75 ", "{}e0", "{}.100", "-{}"]
    out = [header]
    for i in range(rows):
        uc = rng.choice(["", "", "{uc}", "{UC}"])
        date = rng.choice(["2025-12-23", "2025-12-24", "2025-12-24", " 2025-12-24"])
        amounts = [rng.choice(forms).format(rng.randint(0, 10**7)) for _ in range(3)]
        amount = rng.choice(["", "", amounts[0], "1.5"])
        out.append(",".join([uc, date, rng.choice(BOOKS + [" BOOK_FX_2 "]), *amounts,
                             rng.choice(["ACTUAL", "PRIOR", "actual", " Prior"]), amount,
                             rng.choice(["", "EUR", "usd", " GBP"]), rng.choice(["", "B1", " B2 ", "   "]),
                             rng.choice(["EMEA", ""])]))
        if i % 997 == 0:
            out.append(",,,,,,,,,,")  # Excel's empty row, as many cells as the header
    return ("\r\n" if crlf else "\n").join(out) + ("\r\n" if crlf else "\n") + ",,,,,,,,,,\n\n"


@pytest.mark.parametrize("crlf", [False, True])
def test_the_new_way_stores_what_the_old_loader_stored_on_a_random_file(conn, two_use_cases, tmp_path, monkeypatch,
                                                                       crlf):
    fast, slow = two_use_cases
    text = random_file(random.Random(1500 + crlf), 5_000, crlf)
    summaries = []
    for use_case in (fast, slow):
        text_for = text.replace("{uc}", str(use_case)).replace("{UC}", str(use_case).upper())
        path = write(tmp_path, f"{use_case}.csv", text_for)
        if use_case == fast:
            with monkeypatch.context() as m:
                m.setattr(facts_loader, "_row_stage", lambda *a, **k: pytest.fail("went the row checks' way"))
                summaries.append(api.load_facts(conn, path, use_case, dates=["2025-12-23", "2025-12-24"]))
        else:
            summaries.append(load_the_slow_way(monkeypatch, conn, path, use_case,
                                               dates=["2025-12-23", "2025-12-24"]))
    assert without_ids(summaries[0]) == without_ids(summaries[1])
    assert summaries[0]["rows_loaded"] == 5_000 and summaries[0]["amount_differs_rows"] > 0
    assert summaries[0]["unmapped_codes"] == ["NOT_A_NODE"]
    assert stored(conn, fast) == stored(conn, slow)
    scenarios = {r[1] for r in stored(conn, fast)}
    currencies = {r[3] for r in stored(conn, fast)}
    assert scenarios == {"ACTUAL", "PRIOR"} and currencies == {None, "EUR", "USD", "GBP"}


def test_excel_rows_as_wide_as_the_header_are_skipped_the_fast_way(conn, two_use_cases, tmp_path, fast_only):
    path = write(tmp_path, "f.csv", f"{HEADER},book\r\n,2025-12-24,BOOK_FX_1,1.50,2,3,ACTUAL,B1\r\n"
                                    ",,,,,,,\r\n , ,,,,, ,\r\n,2025-12-24,BOOK_FX_2,1,2,3,PRIOR,\r\n,,,,,,,\r\n\r\n")
    summary = api.load_facts(conn, path, two_use_cases[0])
    assert summary["rows_loaded"] == 2
    assert stored(conn, two_use_cases[0]) == [
        (dt.date(2025, 12, 24), "ACTUAL", "BOOK_FX_1", None, "1.50", "2.00", "3.00", "1.50",
         {"book": "B1"}),
        (dt.date(2025, 12, 24), "PRIOR", "BOOK_FX_2", None, "1.00", "2.00", "3.00", "1.00", {})]


def test_a_date_outside_the_given_dates(conn, two_use_cases, tmp_path):
    rows = "".join(f",2025-12-24,BOOK_FX_1,{i},1,1,ACTUAL\n" for i in range(50))
    path = write(tmp_path, "f.csv", f"{HEADER}\n{rows},2025-12-23,BOOK_FX_1,1,1,1,PRIOR\n")
    assert error_of(lambda: api.load_facts(conn, path, two_use_cases[0], dates=["2025-12-24"])) == (
        f"{path}: line 52, column pnl_date: 2025-12-23 is not a date given with --date (2025-12-24); remove the "
        f"row or give its date too; nothing loaded")


def test_a_wrong_use_case_id(conn, two_use_cases, tmp_path):
    fast, slow = two_use_cases
    path = write(tmp_path, "f.csv", f"{HEADER}\n{fast},2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n"
                                    f"{slow},2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\nnope,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n")
    assert error_of(lambda: api.load_facts(conn, path, fast)).splitlines() == [
        f"{path}: 2 bad rows, nothing loaded",
        f"  line 3, column use_case_id: '{slow}' is not the use case being loaded (Fast, {fast})",
        "  line 4, column use_case_id: 'nope' is not a use case id (a uuid)"]


def test_a_good_file_the_set_based_way_is_unsure_of_is_staged_by_the_row_checks(conn, two_use_cases, tmp_path,
                                                                                  monkeypatch):
    def unsure(block):
        raise fact_stage.Unsure("told so")
    monkeypatch.setattr(fact_stage, "_check_block", unsure)
    path = write(tmp_path, "f.csv", f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n"
                                    ",2025-12-24,BOOK_FX_1,2,2,2,PRIOR\n")
    assert api.load_facts(conn, path, two_use_cases[0])["rows_loaded"] == 2
    assert [r[4] for r in stored(conn, two_use_cases[0])] == ["1.00", "2.00"]


def test_a_plain_file_goes_the_set_based_way_in_the_files_order(conn, two_use_cases, tmp_path, fast_only):
    rows = [f",2025-12-24,BOOK_FX_{1 + i % 2},{i}.25,1,1,{('ACTUAL', 'PRIOR')[i % 2]},D{i % 3}" for i in range(3_000)]
    path = write(tmp_path, "f.csv", "\n".join([f"{HEADER},desk", *rows]) + "\n")
    summary = api.load_facts(conn, path, two_use_cases[0])
    assert summary["rows_loaded"] == 3_000
    assert summary["slices"] == [{"pnl_date": "2025-12-24", "scenario": "ACTUAL", "rows": 1_500},
                                 {"pnl_date": "2025-12-24", "scenario": "PRIOR", "rows": 1_500}]
    facts = stored(conn, two_use_cases[0])
    assert [r[4] for r in facts] == [f"{i}.25" for i in range(3_000)]
    assert [r[8] for r in facts] == [{"desk": f"D{i % 3}"} for i in range(3_000)]


def test_a_piped_file_is_spooled_and_loads(conn, two_use_cases, tmp_path):
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes):
            self.inner = io.BytesIO(data)
            self.name = "<stdin>"

        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, buffer):
            data = self.inner.read(len(buffer))
            buffer[:len(data)] = data
            return len(data)
    good = f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n".encode()
    assert api.load_facts(conn, io.BufferedReader(Pipe(good)), two_use_cases[0])["rows_loaded"] == 1
    bad = f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,1,1,BUDGET\n".encode()
    assert error_of(lambda: api.load_facts(conn, io.BufferedReader(Pipe(bad)), two_use_cases[1])) == (
        "<stdin>: line 2, column scenario: 'BUDGET' is not a scenario (expected ACTUAL or PRIOR); nothing loaded")


# --------------------------------------------------------------------------------------------------
# the facts' use case, without a row-by-row foreign key

def test_the_facts_have_no_row_by_row_foreign_key(conn):
    assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = 'fact_pnl_entries'::regclass "
                        "AND contype = 'f'").fetchone()[0] == 0


def test_facts_of_an_unknown_use_case_are_refused(conn, two_use_cases):
    unknown = uuid.uuid4()
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"unknown use case {unknown}"):
        conn.execute("INSERT INTO fact_pnl_entries (use_case_id, pnl_date, scenario, category_code, daily_amount, "
                     "wtd_amount, ytd_amount) VALUES (%s, '2025-12-24', 'ACTUAL', 'BOOK_FX_1', 1, 1, 1)", (unknown,))
    with conn.transaction():
        load = conn.execute("SELECT open_fact_load(%s)", (two_use_cases[0],)).fetchone()[0]
        with pytest.raises(psycopg.errors.ForeignKeyViolation,
                           match=f"fact load {load} belongs to use case {two_use_cases[0]}, not {unknown}"), \
                conn.transaction():
            conn.execute("INSERT INTO fact_pnl_entries (use_case_id, load_id, pnl_date, scenario, category_code, "
                         "daily_amount, wtd_amount, ytd_amount) "
                         "VALUES (%s, %s, '2025-12-24', 'ACTUAL', 'BOOK_FX_1', 1, 1, 1)", (unknown, load))
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 0


def orphans(conn) -> int:
    return conn.execute("SELECT count(*) FROM fact_pnl_entries f WHERE NOT EXISTS "
                        "(SELECT 1 FROM use_cases u WHERE u.use_case_id = f.use_case_id)").fetchone()[0]


def test_a_use_cases_facts_go_with_it(conn, two_use_cases, tmp_path):
    fast, slow = two_use_cases
    rows = "".join(f",2025-12-24,BOOK_FX_1,{i},1,1,ACTUAL\n" for i in range(100))
    api.load_facts(conn, write(tmp_path, "a.csv", f"{HEADER}\n{rows}"), fast)
    api.load_facts(conn, write(tmp_path, "b.csv", f"{HEADER}\n{rows}"), slow)
    api.load_facts(conn, write(tmp_path, "c.csv", f"{HEADER}\n{rows}"), fast, replace=True)
    assert api.delete_use_case(conn, fast)["facts_purged"] == 200
    assert conn.execute("SELECT use_case_id, count(*) FROM fact_pnl_entries GROUP BY 1").fetchall() == [(slow, 100)]
    assert orphans(conn) == 0
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="fact loads are history"):
        conn.execute("DELETE FROM fact_loads WHERE use_case_id = %s", (slow,))
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("DELETE FROM use_cases WHERE use_case_id = %s", (slow,))
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 100


def test_deleting_a_use_case_waits_for_a_load_into_it_and_takes_its_facts(conn, db_url, two_use_cases, tmp_path):
    fast = two_use_cases[0]
    rows = "".join(f",2025-12-24,BOOK_FX_1,{i},1,1,ACTUAL\n" for i in range(100))
    path = write(tmp_path, "a.csv", f"{HEADER}\n{rows}")
    outcome = {}
    with psycopg.connect(db_url) as loader:
        loader.execute("SET search_path TO pnl, public")
        assert api.load_facts(loader, path, fast)["rows_loaded"] == 100  # in the loader's open transaction

        def delete():
            with psycopg.connect(db_url, autocommit=True) as other:
                other.execute("SET search_path TO pnl, public")
                outcome["deleted"] = api.delete_use_case(other, fast)
        deleting = threading.Thread(target=delete)
        deleting.start()
        deleting.join(1.0)
        assert deleting.is_alive()  # waits for the load
        loader.commit()
    deleting.join(30)
    assert outcome["deleted"]["facts_purged"] == 100
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 0
    assert orphans(conn) == 0


def test_a_load_into_a_use_case_being_deleted_is_refused(conn, db_url, two_use_cases, tmp_path):
    fast = two_use_cases[0]
    path = write(tmp_path, "a.csv", f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n")
    outcome = {}
    with psycopg.connect(db_url) as deleter:
        deleter.execute("SET search_path TO pnl, public")
        api.delete_use_case(deleter, fast)  # not committed yet

        def load():
            with psycopg.connect(db_url, autocommit=True) as other:
                other.execute("SET search_path TO pnl, public")
                try:
                    outcome["loaded"] = facts_loader.load_facts(other, path, (fast, "Fast", "STERLING"))
                except (PnlError, psycopg.Error) as exc:
                    outcome["error"] = str(exc)
        loading = threading.Thread(target=load)
        loading.start()
        loading.join(1.0)
        assert loading.is_alive()  # waits for the delete
        deleter.commit()
    loading.join(30)
    assert ("loaded" not in outcome and "was deleted" in outcome["error"]) or "unknown use case" in outcome["error"]
    assert conn.execute("SELECT count(*) FROM fact_pnl_entries").fetchone()[0] == 0
    assert orphans(conn) == 0


def test_a_load_raises_work_mem_for_its_transaction_only_to_its_limit(conn, two_use_cases, tmp_path):
    assert conn.execute("SELECT limit_value('fact_load_work_mem_mb')").fetchone() == (256,)
    path = write(tmp_path, "a.csv", f"{HEADER}\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL\n")
    conn.execute("SET work_mem = '4MB'")
    with conn.transaction():
        api.load_facts(conn, path, two_use_cases[0])
        assert conn.execute("SHOW work_mem").fetchone() == ("256MB",)
    assert conn.execute("SHOW work_mem").fetchone() == ("4MB",)
    conn.execute("SET work_mem = '1GB'")  # never lowered
    api.load_facts(conn, path, two_use_cases[1])
    assert conn.execute("SHOW work_mem").fetchone() == ("1GB",)


def test_a_connection_not_in_utf8_gets_the_file_decoded_not_its_raw_bytes(conn, two_use_cases, tmp_path):
    path = write(tmp_path, "a.csv", f"{HEADER},desk\n,2025-12-24,BOOK_FX_1,1,1,1,ACTUAL,Zürich\n")
    conn.execute("SET client_encoding TO 'LATIN1'")
    assert api.load_facts(conn, path, two_use_cases[0])["rows_loaded"] == 1
    conn.execute("SET client_encoding TO 'UTF8'")
    assert stored(conn, two_use_cases[0])[0][8] == {"desk": "Zürich"}
