"""A peer's own process: imports the peer, connects, then runs one full snapshot (read, compute, write)
per `run` line on stdin and answers with one JSON line of its timings; `quit` ends it with its peak RSS.
Its own process, so the peer's memory and threads are its own, not the bench's."""
from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
import uuid

from psycopg import sql as pgsql

from pnldb.bench.peers import common
from pnldb.db import connect


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(dsn: str, schema: str, peer: str, use_case: str, pnl_date: str) -> None:
    module = importlib.import_module(f"pnldb.bench.peers.{peer}_peer")
    use_case_id, day = uuid.UUID(use_case), dt.date.fromisoformat(pnl_date)
    with connect(dsn, autocommit=True) as conn:
        conn.execute("SET jit = off")
        s = pgsql.Identifier(schema).as_string(conn)
        common.create_table(conn, s, peer)
        common.check_currencies(conn, s, common.read_plan(conn, s, use_case_id, day), use_case_id, day)
        postmaster = common.postmaster_pid(conn)
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            if line.strip() != "run":
                break
            clock = common.Clock(postmaster)
            rows = common.run_peer(module, peer, conn, dsn, s, use_case_id, day, clock)
            print(json.dumps({**clock.result(), "rows": rows}), flush=True)
    print(json.dumps({"peak_rss_mb": _peak_rss_mb()}), flush=True)


if __name__ == "__main__":  # pragma: no cover - run by runner.PeerProcess
    main(*sys.argv[1:6])
