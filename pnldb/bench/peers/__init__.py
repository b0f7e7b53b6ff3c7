"""`pnldb bench --peers`: what a user would pick instead of pnldb, timed beside the engine on the same data.

Each peer (pandas, polars, DuckDB) reads the measured slice's facts out of PostgreSQL by its fastest path,
computes contract §2 exactly in its own engine (integer cents or exact decimals, never float), writes the
same rows back with COPY into a scratch table, and the bench checks that those rows equal the engine's
run row for row. Each peer runs in a process of its own (worker), driven run by run so that the engine
and the peers interleave (runner). The peers need the optional `bench` extra (pip install 'pnldb[bench]');
a peer whose packages are missing is skipped with one line on stderr.
"""
from __future__ import annotations

import importlib.util
import sys

from pnldb.errors import PnlError

PEERS = ("pandas", "polars", "duckdb")
# the modules each peer imports (its module REQUIRES says the same)
REQUIRES = {"pandas": ("pandas", "pyarrow", "numpy"), "polars": ("polars", "numpy"), "duckdb": ("duckdb", "pyarrow")}


def parse_peers(value: str | None) -> tuple[str, ...]:
    """'' or None: none; 'all': every peer; else a comma-separated list of peer names."""
    names = [part.strip().lower() for part in (value or "").split(",") if part.strip()]
    if names == ["all"]:
        return PEERS
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        raise PnlError(f"unknown peer(s) {', '.join(unknown)}; the peers are {', '.join(PEERS)} (or 'all')")
    return tuple(dict.fromkeys(names))


def missing_modules(peer: str) -> list[str]:
    return [module for module in REQUIRES[peer] if importlib.util.find_spec(module) is None]


def skip_line(peer: str, missing: list[str]) -> str:
    return f"peer {peer} skipped: pip install 'pnldb[bench]' ({', '.join(missing)} not installed)"


def available(peers: tuple[str, ...], stream=None) -> tuple[tuple[str, ...], dict[str, str]]:
    """The peers whose packages are installed, and for each other one the line printed on stderr."""
    stream = stream or sys.stderr
    ready, skipped = [], {}
    for peer in peers:
        missing = missing_modules(peer)
        if missing:
            skipped[peer] = skip_line(peer, missing)
            print(skipped[peer], file=stream, flush=True)
        else:
            ready.append(peer)
    return tuple(ready), skipped
