"""Explanations (contract §6) on a coordinator with 2 shards (issue 16): every test of
tests/test_explain_matches_reference.py, with the same assertions, its database a coordinator."""
from __future__ import annotations

import pytest

from tests.conftest import made_coordinator
from tests.test_explain_matches_reference import *  # noqa: F403  (the tests, collected here again)


@pytest.fixture
def db_url(server_url, db_url):
    with made_coordinator(server_url, db_url) as url:
        yield url
