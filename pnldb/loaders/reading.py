"""Reading the input files: opening, decoding lines (UTF-8, BOM, NUL bytes, progress), the CSV header,
and the messages that name the line (and column) a problem sits on."""
from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from pnldb.errors import PnlError

MAX_REPORTED = 10  # problems quoted in one error message; the rest are counted

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


def problems_error(name: str, what: str, problems: list[str], total: int) -> PnlError:
    shown = "; ".join(problems[:MAX_REPORTED])
    more = f"; and {total - MAX_REPORTED} more" if total > MAX_REPORTED else ""
    if total == 1:
        return PnlError(f"{name}: {shown}; nothing loaded")
    return PnlError(f"{name}: {total} {what}, nothing loaded: {shown}{more}")


def read_header(reader, name: str, required: Iterable[str]) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise PnlError(f"{name}: the file is empty; expected a header line") from None
    except BadLine as exc:
        raise PnlError(f"{name}: line 1 (the header) {exc}") from None
    except csv.Error as exc:
        raise PnlError(f"{name}: line 1 (the header): {exc}") from None
    header = [h.strip() for h in header]
    seen = set()
    for i, col in enumerate(header):
        if not col:
            raise PnlError(f"{name}: line 1: column {i + 1} of the header has no name")
        if col in seen:
            raise PnlError(f"{name}: line 1: column {quoted(col)} appears twice in the header")
        seen.add(col)
    missing = [c for c in required if c not in seen]
    if missing:
        raise PnlError(f"{name}: line 1: missing required column{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(missing)} in the header (found: {', '.join(header)})")
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
