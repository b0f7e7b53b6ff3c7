"""The words of the semantics, declared once for the SQL templates, the API, the loaders and the report.

(`pnldb/reference.py` keeps its own on purpose: it is the independent oracle.)
"""
from __future__ import annotations

MEASURES = ("daily", "wtd", "ytd")
FACT_MEASURES = tuple(f"{m}_amount" for m in MEASURES)
SCENARIOS = ("ACTUAL", "PRIOR")
VARIANCE = "VARIANCE"
RESULT_SCENARIOS = (*SCENARIOS, VARIANCE)
KINDS = ("natural", "adjusted", "plug")
RESULT_VALUE_COLUMNS = tuple(f"{m}_{k}" for m in MEASURES for k in KINDS)
UNMAPPED = "__UNMAPPED__"
UNMAPPED_NAME = "Unmapped"
