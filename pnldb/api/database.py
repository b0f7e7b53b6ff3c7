"""Setting a database up: the migrations with the SQL layer, the rendered SQL for a DBA, and a
throw-away server for demos and notebooks."""
from pnldb.embedded import EmbeddedPostgres
from pnldb.schema import migrate, render_sql, sql_files

__all__ = ["EmbeddedPostgres", "migrate", "render_sql", "sql_files"]
