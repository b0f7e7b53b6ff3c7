"""What text from the database may not carry to a terminal: control characters (ESC sequences, C1
controls), format characters (bidi overrides, zero-width characters) and line or paragraph separators.
The one definition both the human output (`clean`, through pnldb.format) and the JSON (which escapes
them, pnldb.jsonfmt) ask."""
from __future__ import annotations

import unicodedata

UNSAFE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


def unsafe(c: str) -> bool:
    """Whether a terminal would act on the character or hide it."""
    return unicodedata.category(c) in UNSAFE_CATEGORIES


def clean(text) -> str:
    """Text made safe for a terminal: every unsafe character becomes U+FFFD, so that it shows as one."""
    return "".join("\ufffd" if unsafe(c) else c for c in str(text))
