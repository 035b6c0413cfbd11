"""Logging filters: request lines are logged without their query strings.

Entra ID's answer on ``/accounts/callback/`` carries the authorization code and state in the query;
the development server (``manage.py demo``, ``runserver``) would otherwise write them to its log.
"""

from __future__ import annotations

import logging
import re

QUERY = re.compile(r"\?[^\s\"]*")


class WithoutQueryStrings(logging.Filter):
    """Drop the query string from the request line a web server logs (its first argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args and isinstance(record.args[0], str):
            record.args = (QUERY.sub("?…", record.args[0]), *record.args[1:])
        return True
