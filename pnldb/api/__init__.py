"""The Python API: the one Python caller of the SQL API. Each function is a thin call of a SQL function
and returns its JSON as Python objects (dates as datetime.date, money as Decimal)."""
from pnldb.api.connection import connect, open_connection
from pnldb.api.reports import fetch_report
from pnldb.api.runs import compare_runs, create_snapshot, delete_use_case, get_run, list_runs

__all__ = ["compare_runs", "connect", "create_snapshot", "delete_use_case", "fetch_report", "get_run", "list_runs",
           "open_connection"]
