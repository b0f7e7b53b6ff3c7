"""`pnldb use-case create` and resolve_use_case."""
from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from pnldb import api
from pnldb.cli import main
from pnldb.errors import PnlError


@pytest.fixture
def structure(conn):
    conn.execute("INSERT INTO hierarchy_structures (structure_id, name) VALUES ('STERLING', 'Sterling')")
    conn.execute("INSERT INTO dim_hierarchy (structure_id, node_id, node_name) VALUES ('STERLING', 'FIRM', 'Firm')")
    return "STERLING"


def create(db_url, *args):
    return CliRunner().invoke(main, ["--dsn", db_url, "use-case", "create", *args])


def one_error_line(result) -> str:
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pnldb: error: "), result.stderr
    return lines[0]


def test_create_prints_the_new_use_case(conn, db_url, structure):
    result = create(db_url, "Project Sterling", "--structure", structure, "--description", "Q4 close")
    assert result.exit_code == 0, result.stderr
    row = conn.execute("SELECT use_case_id, name, structure_id, description, status FROM use_cases").fetchone()
    assert row[1:] == ("Project Sterling", "STERLING", "Q4 close", "ACTIVE")
    assert f"use_case_id  {row[0]}" in result.stdout
    assert "name         Project Sterling" in result.stdout
    assert "structure_id STERLING" in result.stdout
    assert "created use case 'Project Sterling'" in result.stderr


def test_create_json(conn, db_url, structure):
    result = create(db_url, "Project Sterling", "--structure", structure, "--json")
    assert result.exit_code == 0, result.stderr
    created = json.loads(result.stdout)
    assert set(created) == {"use_case_id", "name", "structure_id", "description", "status", "created_at",
                            "reporting_currency"}  # contract §8
    assert created["name"] == "Project Sterling" and created["structure_id"] == "STERLING"
    assert created["description"] is None
    stored = conn.execute("SELECT use_case_id FROM use_cases").fetchone()[0]
    assert uuid.UUID(created["use_case_id"]) == stored


def test_unknown_structure_is_a_clear_error(conn, db_url, structure):
    message = one_error_line(create(db_url, "Project Sterling", "--structure", "NOPE"))
    assert "unknown structure 'NOPE'" in message and "pnldb load hierarchy" in message
    assert conn.execute("SELECT count(*) FROM use_cases").fetchone()[0] == 0


def test_duplicate_name_is_a_clear_error(conn, db_url, structure):
    assert create(db_url, "Project Sterling", "--structure", structure).exit_code == 0
    message = one_error_line(create(db_url, "Project Sterling", "--structure", structure))
    assert "use case 'Project Sterling' already exists" in message
    assert conn.execute("SELECT count(*) FROM use_cases").fetchone()[0] == 1


def test_blank_name_is_a_clear_error(db_url, structure):
    assert "must not be blank" in one_error_line(create(db_url, "  ", "--structure", structure))


def test_resolve_use_case_by_id_or_name(conn, structure):
    created = api.create_use_case(conn, "Project Sterling", structure)
    expected = (created["use_case_id"], "Project Sterling", "STERLING")
    assert api.resolve_use_case(conn, "Project Sterling") == expected
    assert api.resolve_use_case(conn, str(created["use_case_id"])) == expected
    assert api.resolve_use_case(conn, str(created["use_case_id"]).upper()) == expected
    assert api.resolve_use_case(conn, created["use_case_id"]) == expected
    with pytest.raises(PnlError, match=r"unknown use case 'Nope'; give a use-case id or exact name "
                                        r"\(see `pnldb use-case list`\)"):
        api.resolve_use_case(conn, "Nope")
    with pytest.raises(PnlError, match="unknown use case"):
        api.resolve_use_case(conn, str(uuid.uuid4()))


def test_use_case_list_shows_each_use_case_with_its_counts(conn, db_url):
    from tests.builders import facts, structure, use_case
    structure(conn, "S", [("ROOT", None)])
    uc = use_case(conn, "Project Sterling", "S")
    facts(conn, uc, [("ACTUAL", "ROOT", "1", "1", "1", {})] * 3)
    result = CliRunner().invoke(main, ["--dsn", db_url, "use-case", "list"])
    assert result.exit_code == 0, result.stderr
    header, line = result.stdout.splitlines()
    assert header.split() == ["USE", "CASE", "ID", "NAME", "STRUCTURE", "STATUS", "FACTS", "RULES", "RUNS"]
    assert line.split() == [str(uc), "Project", "Sterling", "S", "ACTIVE", "3", "0", "0"]
    as_json = json.loads(CliRunner().invoke(main, ["--dsn", db_url, "use-case", "list", "--json"]).stdout)
    assert [(r["name"], r["facts"], r["rules"], r["runs"]) for r in as_json] == [("Project Sterling", 3, 0, 0)]
