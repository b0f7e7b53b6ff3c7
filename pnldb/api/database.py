"""Setting a database up: the DBA's roles and schema, the migrations with the SQL layer, the rendered SQL
for a DBA, and a throw-away server for demos and notebooks."""
from pnldb.embedded import EmbeddedPostgres
from pnldb.schema import create_roles, installation_roles, migrate, render_sql, sql_files

__all__ = ["EmbeddedPostgres", "create_roles", "installation_roles", "migrate", "render_sql", "sql_files"]
