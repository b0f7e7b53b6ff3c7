"""`pnldb cluster init | status | purge`: a coordinator and its PL/Proxy shards (issue 16)."""
import click

from pnldb import api
from pnldb.cli.common import emit_json, json_option, pass_settings


@click.group()
def cluster() -> None:
    """Past one machine: the facts on N shard databases, everything else on this coordinator."""


def _servers(_ctx, _param, value: str | None) -> list[str] | None:
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


@cluster.command("init")
@click.option("--shards", required=True, type=int, help="How many shard databases: a power of two (1, 2, 4, ...).")
@click.option("--servers", callback=_servers, metavar="URL,...",
              help="Superuser URLs of the servers for the shards, used round-robin [default: this database's "
                   "server]. Their credentials are used to make the shards and never stored.")
@json_option
@pass_settings
def init(settings, shards: int, servers: list[str] | None, as_json: bool) -> None:
    """Make this migrated installation, before any fact is loaded, the coordinator of --shards new shard
    databases named <database>_shard<k>. Needs a superuser. Resharding is an offline re-load into a new
    cluster: there is no add-shard."""
    made = api.init_cluster(settings.conn, shards, servers, settings.schema)
    if as_json:
        emit_json(made)
        return
    for shard in made["shards"]:
        click.echo(f"shard {shard['shard_no']}\t{shard['server']}")
    click.echo(f"coordinator {made['coordinator']}: {len(made['shards'])} shard(s), shard layer "
               f"{made['shard_layer_version']}, shard login {made['link_role']}", err=True)


@cluster.command("status")
@json_option
@pass_settings
def status(settings, as_json: bool) -> None:
    """The shards, with the loads and facts each holds; facts of loads the coordinator does not have."""
    state = api.cluster_status(settings.conn, settings.schema)
    if as_json:
        emit_json(state)
        return
    if not state["shards"]:
        click.echo(f"{state['coordinator']} is a single server: no shards (pnldb cluster init makes them)", err=True)
        return
    for shard in state["shards"]:
        click.echo(f"shard {shard['shard_no']}\t{shard['server']}\t{shard['loads']} load(s)\t{shard['facts']} fact(s)")
    click.echo(f"orphan facts {state['orphan_facts']}, queued purges {state['queued_purges']}", err=True)


@cluster.command("purge")
@json_option
@pass_settings
def purge(settings, as_json: bool) -> None:
    """Delete from the shards the facts no run can read: of deleted use cases, purged slices, and loads that
    never committed (a loader that died half-way). Idempotent."""
    done = api.purge_shards(settings.conn, settings.schema)
    if as_json:
        emit_json(done)
        return
    click.echo(f"purges {done['queued']}, orphan loads {done['orphan_loads']}, facts deleted {done['facts_deleted']}")
