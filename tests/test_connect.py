"""A DSN that cannot be used, unreachable or malformed, is one error line naming it with the password
hidden (the unreachable cases are in test_cli_basics.py)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from pnldb.cli import main

MALFORMED = [
    ("postgresql://alice:s3cret@127.0.0.1:notaport/db",
     "postgresql://alice:***@127.0.0.1:notaport/db", 'invalid integer value "notaport" for connection option "port"'),
    ("postgresql://alice:s3cret@[::1",
     "postgresql://alice:***@[::1", 'looking for matching "]" in IPv6 host address in URI: "postgresql://alice:***@[::1"'),
    ("host=127.0.0.1 password='s3 cret' bogus_option=1",
     "host=127.0.0.1 password=*** bogus_option=1", 'invalid connection option "bogus_option"'),
    ("host=127.0.0.1 password=s3cret dbname",
     "host=127.0.0.1 password=*** dbname", 'missing "=" after "dbname" in connection info string'),
]


@pytest.mark.parametrize("dsn, shown, reason", MALFORMED, ids=[m[1] for m in MALFORMED])
def test_a_malformed_dsn_is_one_line_naming_it_without_password(dsn, shown, reason):
    result = CliRunner().invoke(main, ["--dsn", dsn, "migrate"])
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"pnldb: error: cannot connect to {shown}: ")
    assert line.endswith(reason)
    assert "s3cret" not in result.stderr and "cret" not in result.stderr
