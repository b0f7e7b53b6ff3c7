"""JSON both ways: SQL API jsonb -> Python (dates as date, money as Decimal) and Python -> text."""
from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from decimal import Decimal

from pnldb.terminal import unsafe

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")


def to_json(value, indent: int | None = 2) -> str:
    """JSON text; Decimals are written with their exact digits, never through a float. Text stays
    readable (no \\u escapes for letters), except what a terminal would act on or hide: C1 controls,
    bidi and other format characters and line separators are escaped as JSON escapes C0 controls, so
    the values are exact and the text is safe to print."""
    return _dump(value, indent, 0)


def _escape(c: str) -> str:
    code = ord(c)
    if code > 0xFFFF:  # a UTF-16 surrogate pair, as JSON writes characters beyond the BMP
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def _string(text: str) -> str:
    # json.dumps escapes the C0 controls itself; its own output is ASCII apart from the text's characters
    return "".join(_escape(c) if ord(c) > 0x7F and unsafe(c) else c for c in json.dumps(text, ensure_ascii=False))


def _dump(value, indent, level) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return json.dumps(value.isoformat())
    if isinstance(value, uuid.UUID):
        return json.dumps(str(value))
    if isinstance(value, dict):
        items = [f"{_string(str(k))}: {_dump(v, indent, level + 1)}" for k, v in value.items()]
        return _join("{", items, "}", indent, level)
    if isinstance(value, (list, tuple)):
        return _join("[", [_dump(v, indent, level + 1) for v in value], "]", indent, level)
    if isinstance(value, str):
        return _string(value)
    return json.dumps(value, ensure_ascii=False)


def _join(open_, items, close, indent, level) -> str:
    if not items:
        return open_ + close
    if indent is None:
        return open_ + ", ".join(items) + close
    pad, inner = " " * (indent * level), " " * (indent * (level + 1))
    return open_ + "\n" + ",\n".join(inner + item for item in items) + "\n" + pad + close


def from_sql_json(text_or_obj):
    """Parse the SQL API's jsonb: numbers become Decimal, ISO dates date, timestamps datetime."""
    obj = json.loads(text_or_obj, parse_float=Decimal) if isinstance(text_or_obj, str) else text_or_obj
    return _decode(obj)


def _decode(value):
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, str):
        if _DATE.match(value):
            return dt.date.fromisoformat(value)
        if _TIMESTAMP.match(value):
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value
