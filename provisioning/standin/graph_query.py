"""OData query options of the stand-in's Graph lists: ``$filter``, ``$search``, ``$top`` / ``$skiptoken``.

``$filter``: ``prop eq 'text'`` (case-insensitive, as Graph compares these properties), ``prop eq
true|false|null``, ``startswith(prop,'text')``, ``prop in ('a','b')`` and ``groupTypes/any(c:c eq
'Unified')``, joined by ``and`` / ``or`` (``and`` binds tighter); anything else is ``400 BadRequest``.

``$search`` (Graph's advanced query): needs the ``ConsistencyLevel: eventual`` header, else ``400
Request_UnsupportedQuery`` with Graph's own message. Clauses are ``"property:term"`` joined by ``OR`` /
``AND``; the term's words each match the start of a word of the property (case-insensitive; words split
at anything not a letter or digit and at lower-to-upper case changes), as Graph tokenizes. Searchable:
displayName, givenName, surname, userPrincipalName, mail, mailNickname, description.

``$top``: page size 1..999 (default 100), as Graph pages directory objects; ``@odata.nextLink`` carries a
``$skiptoken`` while more remain. Outside the range: ``400 Request_UnsupportedQuery`` "Invalid page size
specified" (Graph's answer); not a number: ``400 BadRequest``. The messages for a malformed ``$search`` or
``$skiptoken`` are the stand-in's own.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from provisioning.standin.wire import graph_error

Obj = dict[str, Any]
Test = Callable[[Obj], bool]

DEFAULT_PAGE, MAX_PAGE = 100, 999
STRING = r"'(?:[^']|'')*'"
CLAUSE = re.compile(
    r"\s*(?:"
    r"(?P<prop>\w+)\s+eq\s+(?:(?P<value>" + STRING + r")|(?P<literal>true|false|null))"
    r"|startswith\(\s*(?P<sprop>\w+)\s*,\s*(?P<svalue>" + STRING + r")\s*\)"
    r"|(?P<iprop>\w+)\s+in\s+\((?P<items>\s*" + STRING + r"(?:\s*,\s*" + STRING + r")*\s*)\)"
    r"|(?P<aprop>\w+)/any\(\s*(?P<var>\w+)\s*:\s*(?P=var)\s+eq\s+(?P<avalue>" + STRING + r")\s*\)"
    r")\s*",
    re.IGNORECASE,
)
JOIN = re.compile(r"(and|or)\b", re.IGNORECASE)
SEARCH_CLAUSE = re.compile(r'\s*"(?P<prop>\w+):(?P<term>[^"]*)"\s*')
SEARCH_JOIN = re.compile(r"(AND|OR)\b", re.IGNORECASE)
SEARCHABLE = (
    "displayName",
    "givenName",
    "surname",
    "userPrincipalName",
    "mail",
    "mailNickname",
    "description",
)
CONSISTENCY_MESSAGE = (
    "Request with $search query parameter only works through MSGraph with a special request header: "
    "'ConsistencyLevel: eventual'"
)


def field_of(obj: Obj, prop: str) -> Any:
    """A property of a rendered object, by case-insensitive name."""
    return next((v for k, v in obj.items() if k.lower() == prop.lower()), None)


def _string(literal: str) -> str:
    return literal[1:-1].replace("''", "'")


def _joined(text: str, clause: Callable[[int], tuple[Test, int]], join: re.Pattern[str]) -> Test:
    """Clauses joined by and / or, ``and`` binding tighter: a predicate."""
    pos, groups, current = 0, [], []
    while True:
        test, pos = clause(pos)
        current.append(test)
        if pos >= len(text):
            break
        found = join.match(text, pos)
        if found is None:
            raise ValueError(pos)
        if found.group(1).lower() == "or":
            groups.append(current)
            current = []
        pos = found.end()
    groups.append(current)
    return lambda obj: any(all(test(obj) for test in group) for group in groups)


def parse_filter(text: str) -> Test:
    """A predicate for a Graph ``$filter``; 400 BadRequest when it cannot be read."""

    def clause(pos: int) -> tuple[Test, int]:
        found = CLAUSE.match(text, pos)
        if found is None:
            raise ValueError(pos)
        return _filter_clause(found), found.end()

    try:
        return _joined(text, clause, JOIN)
    except ValueError as exc:
        raise graph_error(400, "BadRequest", f"Invalid filter clause: '{text}'.") from exc


def _filter_clause(found: re.Match[str]) -> Test:
    if found.group("prop"):
        prop = found.group("prop")
        literal = (found.group("literal") or "").lower()
        if literal == "null":
            return lambda obj: field_of(obj, prop) is None
        if literal:
            wanted = literal == "true"
            return lambda obj: field_of(obj, prop) is wanted
        value = _string(found.group("value")).lower()
        return lambda obj: str(field_of(obj, prop) or "").lower() == value
    if found.group("sprop"):
        prop, prefix = found.group("sprop"), _string(found.group("svalue")).lower()
        return lambda obj: str(field_of(obj, prop) or "").lower().startswith(prefix)
    if found.group("iprop"):
        prop = found.group("iprop")
        values = {_string(v).lower() for v in re.findall(STRING, found.group("items"))}
        return lambda obj: str(field_of(obj, prop) or "").lower() in values
    prop, item = found.group("aprop"), _string(found.group("avalue")).lower()
    return lambda obj: any(str(v).lower() == item for v in field_of(obj, prop) or [])


def words(text: str) -> list[str]:
    """Graph's search tokens of a value: split at non-alphanumerics and at lower-to-upper changes."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def parse_search(text: str, resource: str) -> Test:
    """A predicate for a Graph ``$search``; 400 Request_UnsupportedQuery when it cannot be read."""

    def clause(pos: int) -> tuple[Test, int]:
        found = SEARCH_CLAUSE.match(text, pos)
        if found is None:
            raise ValueError(pos)
        prop = next((p for p in SEARCHABLE if p.lower() == found.group("prop").lower()), None)
        if prop is None:
            raise graph_error(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported or invalid search clause specified for property '{found.group('prop')}' "
                f"of resource '{resource}'.",
            )
        terms = words(found.group("term"))
        return (lambda obj: _matches(terms, words(str(field_of(obj, prop) or "")))), found.end()

    try:
        return _joined(text, clause, SEARCH_JOIN)
    except ValueError as exc:
        raise graph_error(
            400,
            "Request_UnsupportedQuery",
            f"Syntax error in the $search query '{text}': use \"property:term\" clauses joined by OR or AND.",
        ) from exc


def _matches(terms: list[str], tokens: list[str]) -> bool:
    return bool(tokens) and all(any(t.startswith(term) for t in tokens) for term in terms)


def page_size(text: str | None) -> int:
    """``$top`` as Graph reads it for directory objects."""
    if text is None:
        return DEFAULT_PAGE
    if not re.fullmatch(r"-?\d+", text.strip()):
        raise graph_error(
            400,
            "BadRequest",
            f"Invalid value '{text}' for $top query option found. "
            "The $top query option requires a non-negative integer value.",
        )
    size = int(text)
    if not 1 <= size <= MAX_PAGE:
        raise graph_error(
            400,
            "Request_UnsupportedQuery",
            f"Invalid page size specified: '{size}'. Must be between 1 and {MAX_PAGE} inclusive.",
        )
    return size


def skip_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"next": offset}).encode()).decode().rstrip("=")


def skipped(token: str | None) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        return max(0, int(json.loads(base64.urlsafe_b64decode(padded.encode()))["next"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise graph_error(
            400, "Request_BadRequest", "The specified page token value has expired or is invalid."
        ) from exc
