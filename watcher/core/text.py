"""Log text shown to a person: verbatim, except what would change how it shows. Pure.

A log line can hold anything a remote sender put in an address. Pages and
reports show it character for character, except control characters (C0, DEL,
C1, TAB included) and the Unicode characters that reorder or break a line
(bidi overrides and isolates, line and paragraph separators): those are shown
as ``\\xNN`` / ``\\uNNNN`` escapes, so nothing can hide or reorder text.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` as one line: unsafe characters escaped, everything else verbatim."""
    return _UNSAFE.sub(_escape, text)
