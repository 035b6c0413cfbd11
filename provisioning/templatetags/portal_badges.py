"""``{% status_badge cr %}``: a request's status as a coloured badge (``status-<status>`` in the style sheet).

A tag rather than an included template: a list renders one per row, and an include (a template looked up, a
context pushed) cost more than the rest of the row."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def status_badge(cr: Any) -> SafeString:
    """The badge of a change request's status, its label as the status' display name."""
    return format_html(
        '<span class="badge status-badge status-{}">{}</span>', cr.status, cr.get_status_display()
    )
