"""A reason a request cannot go ahead, tied to the field it belongs to (shared by every checker)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One reason a request cannot go ahead, tied to a field (``workspace.team``, ``clusters.1.name``)."""

    field: str
    message: str


# Characters that make text read other than it is: bidirectional overrides, isolates and marks (a name that
# shows as "team-prod" but is "team-dorp"), zero-width characters, and every control character.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
LINE_BREAKS = frozenset("\n\r\t")


def unsafe_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character of ``text`` no name or free text may hold, as ``U+202E``; None when it is clean.

    Refused: control characters (Unicode category Cc; tab and line breaks allowed in ``multiline`` text),
    format characters (Cf: bidirectional controls, zero-width spaces and joiners, the BOM), unassigned code
    points, private use and surrogates.
    """
    for char in text:
        if multiline and char in LINE_BREAKS:
            continue
        if char in BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cf", "Cn", "Co", "Cs"):
            return f"U+{ord(char):04X}"
    return None


def text_problem(
    field: str, text: str, *, max_length: int, multiline: bool = False, label: str = ""
) -> Problem | None:
    """A problem when ``text`` is too long or holds a character ``unsafe_character`` refuses."""
    what = label or field.rsplit(".", 1)[-1].replace("_", " ")
    if len(text) > max_length:
        return Problem(field, f"{what} is too long: at most {max_length} characters")
    found = unsafe_character(text, multiline=multiline)
    if found is not None:
        return Problem(
            field,
            f"{what} holds the invisible or control character {found}, which can make text read other than "
            "it is: remove it",
        )
    return None
