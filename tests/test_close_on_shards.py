"""The close (contract §7) on a coordinator with 2 shards (issue 16): every test of tests/test_close.py, with
the same assertions, its database made a coordinator before the test puts anything in it."""
from __future__ import annotations

import pytest

from tests.conftest import made_coordinator
from tests.test_close import *  # noqa: F403  (the tests, collected here again)


@pytest.fixture
def db_url(server_url, db_url):
    with made_coordinator(server_url, db_url) as url:
        yield url
