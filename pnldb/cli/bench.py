"""`pnldb bench`: snapshots at growing sizes against the bare-aggregate floor (logic in pnldb.bench)."""
from __future__ import annotations

import click

from pnldb import bench as bench_mod
from pnldb.bench.generation import RULE_LAYOUTS
from pnldb.bench.peers import parse_peers
from pnldb.bench.summary import shard_mismatches
from pnldb.cli.common import emit_json, json_option, pass_settings
from pnldb.errors import PnlError


def _sizes(_ctx, _param, value: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {value!r}") from None
    if not sizes or any(n < 1 for n in sizes):
        raise click.BadParameter("sizes are positive numbers of facts per scenario")
    return sizes


def _peers(_ctx, _param, value: str) -> tuple[str, ...]:
    try:
        return parse_peers(value)
    except PnlError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option("--sizes", default="100000,1000000", show_default=True, callback=_sizes,
              help="Facts per scenario (ACTUAL and PRIOR each) of the measured use case and date, comma-separated.")
@click.option("--rules", default=1000, show_default=True, type=click.IntRange(0), help="Rules on the hierarchy.")
@click.option("--repeat", default=5, show_default=True, type=click.IntRange(1), help="Timed runs per measurement.")
@click.option("--reference-max", default=100_000, show_default=True, type=click.IntRange(0),
              help="Time the Python reference (and compare it row for row) at sizes up to this.")
@click.option("--load-max", default=1_000_000, show_default=True, type=click.IntRange(0),
              help="Time `pnldb load facts` at sizes up to this.")
@click.option("--other-dates", default=20, show_default=True, type=click.IntRange(0),
              help="Other COB dates of the measured use case (besides a second use case) that a snapshot must "
                   "leave out.")
@click.option("--scope-volume", default=1_000_000, show_default=True, type=click.IntRange(1),
              help="Facts per scenario on each other date and use case: the size, capped at this.")
@click.option("--superseded-versions", default=5, show_default=True, type=click.IntRange(0),
              help="Superseded versions of the measured slice generated behind a current copy of it.")
@click.option("--layouts", default=",".join(layout for layout in RULE_LAYOUTS if layout != "nested"),
              show_default=True, metavar="LAYOUT,...",
              help=f"Other rule layouts to time the snapshot with, beside nested ({', '.join(RULE_LAYOUTS)}); "
                   "'' for none.")
@click.option("--workers", type=click.IntRange(0),
              help="max_parallel_workers_per_gather of the embedded server (default: the number of CPUs).")
@click.option("--peers", default="", show_default=True, metavar="PEER,...", callback=_peers,
              help="Time pandas, polars and/or duckdb ('all') beside the engine on the same data, each reading the "
                   "facts, computing the snapshot and writing its rows back, checked row for row against the "
                   "engine's (needs pip install 'pnldb[bench]'; a peer not installed is skipped).")
@click.option("--shards", default=0, show_default=True, type=click.IntRange(0),
              help="Also time create_snapshot of the measured slice on a coordinator of this many shard databases "
                   "(a power of two; PL/Proxy, on the same server) against a single-server database with the same "
                   "facts, interleaved, with the CPU of the coordinator's and the shards' backends, and compare "
                   "the two runs' rows row for row (0: off; needs a superuser and postgresql-plproxy).")
@json_option
@pass_settings
def bench(settings, sizes, rules, repeat, reference_max, load_max, other_dates, scope_volume, superseded_versions,
          layouts, workers, peers, shards, as_json) -> None:
    """Measure create_snapshot at growing sizes against the floor: one GROUP BY over the in-scope facts.

    Runs on an embedded PostgreSQL sized for the largest size (or on --dsn, in a scratch schema it
    creates and drops), with generated, deterministic data: 10,111 nodes in five levels, the measured
    date among 20 others and a second use case, and RULES rules. Also times verify_run and explain_node
    of a finished run, a snapshot of the same facts behind superseded versions of them, and the snapshot
    with the rules laid out otherwise (--layouts). Checks that
    the root ties out to the facts and, where the Python reference runs, that the engine matches it row
    for row; a wrong answer fails the bench. The table goes to stdout (--json: everything measured), progress to stderr.
    """
    options = bench_mod.Options(sizes=sizes, rules=rules, repeat=repeat, reference_max=reference_max,
                                load_max=load_max, other_dates=other_dates, scope_volume=scope_volume,
                                superseded_versions=superseded_versions, workers=workers,
                                layouts=tuple(layout for layout in layouts.split(",") if layout),
                                peers=peers, shards=shards)
    if settings.dsn is not None and workers is not None:
        raise PnlError("--workers sets up the embedded server; with --dsn the server's own settings apply")
    report = bench_mod.run_bench(options, dsn=settings.dsn, progress=bench_mod.Progress())
    if as_json:
        emit_json(report)
    else:
        click.echo(bench_mod.format_report(report))
    mismatches = shard_mismatches(report)
    if mismatches:  # after the report, so that what was measured is not lost; the command fails
        raise PnlError("\n".join(mismatches))
