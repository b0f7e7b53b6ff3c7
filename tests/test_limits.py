"""The limits table: read by everyone, values tuned by admins only, each change stamped by the session."""
from __future__ import annotations

import psycopg
import pytest


def test_limit_value_reads_a_limit_and_refuses_an_unknown_name(conn):
    conn.execute("INSERT INTO limits (name, value, description) VALUES ('test_limit', 7, 'a test limit')")
    assert conn.execute("SELECT limit_value('test_limit')").fetchone() == (7,)
    with pytest.raises(psycopg.errors.InternalError, match="unknown limit 'no_such_limit'"):
        conn.execute("SELECT limit_value('no_such_limit')")


def test_limits_are_positive_integers(conn):
    with pytest.raises(psycopg.errors.CheckViolation, match="limits_value_positive"):
        conn.execute("INSERT INTO limits (name, value, description) VALUES ('test_limit', 0, 'a test limit')")


def test_admins_tune_a_value_stamped_with_their_login_readers_and_operators_cannot(conn, login):
    conn.execute("INSERT INTO limits (name, value, description, changed_by) VALUES ('test_limit', 7, 'x', 'forged')")
    admin, operator, reader = login("admin"), login("operator"), login("reader")
    assert reader.execute("SELECT value, limit_value('test_limit') FROM limits WHERE name = 'test_limit'"
                          ).fetchone() == (7, 7)
    for refused in (operator, reader):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            refused.execute("UPDATE limits SET value = 8 WHERE name = 'test_limit'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("UPDATE limits SET description = 'changed' WHERE name = 'test_limit'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("INSERT INTO limits (name, value, description) VALUES ('another', 1, 'x')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("UPDATE limits SET value = 9, changed_by = 'someone else' WHERE name = 'test_limit'")
    admin.execute("UPDATE limits SET value = 9 WHERE name = 'test_limit'")
    who = admin.execute("SELECT session_user").fetchone()[0]
    assert conn.execute("SELECT value, changed_by FROM limits WHERE name = 'test_limit'").fetchone() == (9, who)
