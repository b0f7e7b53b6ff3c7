"""Reading the input files: opening, decoding lines (UTF-8, BOM, NUL bytes, progress), the CSV header,
and the messages that name the line (and column) a problem sits on."""
from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from pnldb.errors import PnlError

MAX_REPORTED = 20  # problems listed in one error message, a line each; the rest are counted
# An id (node_id, parent_node_id, category_code) is a key of btree indexes, whose entries hold at most
# 2,704 bytes: longer ids are refused by the loaders with their line and column, well below that.
MAX_ID_BYTES = 1000

Progress = Callable[[int], None]


class BadLine(Exception):
    """A line that cannot even be read (encoding, NUL byte); carries the raw text if any."""

    def __init__(self, message: str, text: str | None = None):
        super().__init__(message)
        self.text = text


def read_lines(binary: BinaryIO, progress: Progress | None) -> Iterator[str]:
    """Decoded lines (endings kept, as csv wants them); UTF-8 with an optional BOM."""
    pending = 0
    first = True
    for raw in binary:
        if progress is not None:
            pending += len(raw)
            if pending >= 1 << 20:
                progress(pending)
                pending = 0
        if first:
            first = False
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        if b"\x00" in raw:
            raise BadLine("contains a NUL byte", raw.decode("utf-8", "replace"))
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadLine(f"is not valid UTF-8 (byte {exc.start + 1}: {raw[exc.start:exc.start + 1]!r})") from None
        yield line
    if progress is not None and pending:
        progress(pending)


def open_source(source) -> tuple[BinaryIO, str, bool]:
    """(binary file, name for messages, whether we opened it)."""
    if isinstance(source, (str, Path)):
        try:
            return open(source, "rb"), str(source), True
        except OSError as exc:
            raise PnlError(f"cannot read {source}: {exc.strerror}") from None
    return source, getattr(source, "name", "<input>"), False


def source_name(source) -> str:
    return str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "<input>")


def quoted(value: str, limit: int = 40) -> str:
    """A value quoted for a message: short, printable, on one line."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return f"'{text}'"
    return repr(text)


def id_problem(value: str) -> str | None:
    """Why `value` cannot be an id (too long, in UTF-8 bytes), or None."""
    size = len(value.encode("utf-8"))
    if size > MAX_ID_BYTES:
        return f"{quoted(value)} is {size:,} bytes long; an id is at most {MAX_ID_BYTES:,} bytes (UTF-8)"
    return None


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """'1 row', '2 rows', '0 rows'."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def problems_error(name: str, what: str, problems: list[str], total: int) -> PnlError:
    """One problem: one line. Several: a summary line, then one indented line per problem (at most
    MAX_REPORTED, then how many more), e.g.

        facts.csv: 3 bad rows, nothing loaded
          line 4, column daily_amount: '1.234' has more than 2 decimal places
          ...
          and 1 more

    `what` is the plural noun of the count ("bad rows", "problems")."""
    if total == 1:
        return PnlError(f"{name}: {problems[0]}; nothing loaded")
    shown = problems[:MAX_REPORTED]
    lines = [f"{name}: {total} {what}, nothing loaded", *(f"  {p}" for p in shown)]
    if total > len(shown):
        lines.append(f"  and {total - len(shown)} more")
    return PnlError("\n".join(lines))


def is_blank_row(row: list[str]) -> bool:
    """A row of empty cells, as Excel writes below the data (',,,,,,'): skipped like a blank line."""
    return not any(cell.strip() for cell in row)


def read_header(reader, name: str, required: Iterable[str]) -> list[str]:
    """The header's column names, trimmed and lower-cased (names match in any case); checked for blank
    and repeated names, the required columns, and a file separated by ';' or tabs instead of commas."""
    try:
        header = next(reader)
    except StopIteration:
        raise PnlError(f"{name}: the file is empty; expected a header line") from None
    except BadLine as exc:
        raise PnlError(f"{name}: line 1 (the header) {exc}") from None
    except csv.Error as exc:
        raise PnlError(f"{name}: line 1 (the header): {exc}") from None
    written = [h.strip() for h in header]
    header = [h.lower() for h in written]
    required = list(required)
    missing = [c for c in required if c not in header]
    if missing and len(header) == 1:
        for separator, called in ((";", "semicolons"), ("\t", "tabs")):
            if separator in header[0]:
                raise PnlError(f"{name}: line 1: the columns are separated by {called}; the separator must be a "
                               f"comma (in Excel: save as \"CSV UTF-8 (Comma delimited)\")")
    seen = set()
    for i, col in enumerate(header):
        if not col:
            raise PnlError(f"{name}: line 1: column {i + 1} of the header has no name")
        if col in seen:
            raise PnlError(f"{name}: line 1: column {quoted(written[i])} appears twice in the header")
        seen.add(col)
    if missing:
        raise PnlError(f"{name}: line 1: missing required column{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(missing)} in the header (found: {', '.join(written)})")
    return header


def nul_column(text: str | None, header: list[str]) -> str:
    """The column of the first cell holding a NUL, parsing the line on its own (best effort)."""
    if text:
        try:
            cells = next(csv.reader([text.rstrip("\r\n")]))
        except (csv.Error, StopIteration):
            cells = []
        for i, cell in enumerate(cells):
            if "\x00" in cell:
                return f", column {header[i]}" if i < len(header) else f", column {i + 1}"
    return ""
