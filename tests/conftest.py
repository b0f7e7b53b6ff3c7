"""One PostgreSQL per test session; migrations applied once into a template; a fresh database per test.

Set PNLDB_TEST_DSN to use an existing server instead of an embedded one (the role must be a superuser: the
tests run the DBA's `pnldb roles create` and make login roles).
"""
from __future__ import annotations

import contextlib
import os
import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pnldb import schema
from pnldb.embedded import EmbeddedPostgres

TEMPLATE = f"pnldb_template_{os.getpid()}"


@pytest.fixture(scope="session")
def server_url():
    external = os.environ.get("PNLDB_TEST_DSN")
    if external:
        yield external
        return
    with EmbeddedPostgres() as pg:
        yield pg.url


def _admin(server_url) -> psycopg.Connection:
    return psycopg.connect(server_url, autocommit=True)


@pytest.fixture(scope="session")
def template_db(server_url):
    with _admin(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
        admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
    with psycopg.connect(make_conninfo(server_url, dbname=TEMPLATE), autocommit=True) as conn:
        schema.create_roles(conn)  # the DBA's step, as the superuser the tests connect as
        schema.migrate(conn)
    yield TEMPLATE
    with _admin(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')


def _fresh_database(server_url, template: str | None = None):
    name = f"pnldb_test_{uuid.uuid4().hex[:12]}"
    with _admin(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    yield make_conninfo(server_url, dbname=name)
    with _admin(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def single_url(server_url, template_db):
    """A second database cloned from the migrated template, beside db_url (a single server to compare with)."""
    yield from _fresh_database(server_url, template_db)


@pytest.fixture
def empty_db_url(server_url):
    """A database with nothing of pnldb in it."""
    yield from _fresh_database(server_url)


# The modules whose every test runs twice: on a single server, then on a coordinator with 2 shards (issue 16),
# with the same assertions.
ON_SHARDS_TOO = {"test_engine_matches_reference", "test_explain_matches_reference", "test_contention", "test_close"}
SINGLE, COORDINATOR = "single server", "coordinator of 2 shards"


def pytest_generate_tests(metafunc):
    if metafunc.module.__name__.rsplit(".", 1)[-1] in ON_SHARDS_TOO and "db_url" in metafunc.fixturenames:
        metafunc.parametrize("db_url", [SINGLE, COORDINATOR], indirect=True)


@pytest.fixture
def db_url(request, server_url, template_db):
    """A database cloned from the migrated template; for the modules of ON_SHARDS_TOO, also made a coordinator."""
    for url in _fresh_database(server_url, template_db):
        if getattr(request, "param", SINGLE) == SINGLE:
            yield url
        else:
            with made_coordinator(server_url, url) as coordinator:
                yield coordinator


@pytest.fixture
def empty_conn(empty_db_url):
    """Autocommit connection to a fresh database with nothing installed."""
    with psycopg.connect(empty_db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def set_up_conn(empty_conn):
    """A fresh database after the DBA's step (`pnldb roles create`): schema pnl, owned by pnl_owner and
    guarded, with nothing migrated."""
    schema.create_roles(empty_conn)
    yield empty_conn


@pytest.fixture
def conn(db_url):
    """Autocommit connection to a fresh migrated database, schema pnl first on the search_path."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        connection.execute("SET search_path TO pnl, public")
        yield connection


@pytest.fixture
def login(conn, db_url):
    """login('reader') -> a connection of a new LOGIN role that is a member of pnl_reader."""
    created, connections = [], []

    def make(group: str) -> psycopg.Connection:
        name = f"t_{group}_{uuid.uuid4().hex[:8]}"
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw' IN ROLE pnl_{group}")
        created.append(name)
        connection = psycopg.connect(make_conninfo(db_url, user=name, password="pw"), autocommit=True)
        connection.execute("SET search_path TO pnl")
        connections.append(connection)
        return connection

    yield make
    for connection in connections:
        connection.close()
    for name in created:
        conn.execute(f"DROP ROLE {name}")


@contextlib.contextmanager
def made_coordinator(server_url, url: str, shards: int = 2):
    """The installation at `url` made the coordinator of `shards` shard databases on the same server (issue
    16); afterwards the shards and their login go, and the coordinator database with them."""
    from pnldb import cluster

    with psycopg.connect(url, autocommit=True) as connection:
        made = cluster.init_cluster(connection, shards)
    try:
        yield url
    finally:
        with _admin(server_url) as admin:
            for shard in made["shards"]:
                admin.execute(f'DROP DATABASE IF EXISTS "{shard["server"].split("dbname=")[1]}" WITH (FORCE)')
            admin.execute(f'DROP DATABASE IF EXISTS "{made["coordinator"]}" WITH (FORCE)')
            cluster.drop_shard_roles(admin, made["link_role"])


@pytest.fixture
def coordinator_url(server_url, db_url):
    """A database cloned from the migrated template, made the coordinator of 2 shard databases."""
    with made_coordinator(server_url, db_url) as url:
        yield url
