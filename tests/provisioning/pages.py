"""Helpers for the team lead's pages: what the browser posts, and what the page shows back."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from django.contrib.messages import get_messages

from provisioning.models import ChangeRequest
from tests.factories import TUTORIAL_SUBSCRIPTION

Status = ChangeRequest.Status
Kind = ChangeRequest.Kind

BLANK_CLUSTER = {
    "name": "",
    "vm_size": "",
    "priority": "low_priority",
    "max_nodes": "1",
    "min_nodes": "0",
    "idle_seconds": "120",
}
BLANK_MEMBER = {"principal": "", "persona": "data_scientist"}
TUTORIAL_CLUSTER_ROWS = [
    {
        "name": "ds3-v2-cluster",
        "vm_size": "STANDARD_DS3_V2",
        "priority": "low_priority",
        "max_nodes": "1",
        "min_nodes": "0",
        "idle_seconds": "120",
    },
    {
        "name": "ds13-v2-2ndclust",
        "vm_size": "STANDARD_D13_V2",
        "priority": "dedicated",
        "max_nodes": "2",
        "min_nodes": "0",
        "idle_seconds": "120",
    },
    {
        "name": "nv6-gpucluster",
        "vm_size": "STANDARD_NV6",
        "priority": "low_priority",
        "max_nodes": "1",
        "min_nodes": "0",
        "idle_seconds": "120",
    },
]
TUTORIAL_MEMBER_ROWS = [
    {"principal": "admin1@contoso.com", "persona": "team_lead"},
    {"principal": "user1@contoso.com", "persona": "team_lead"},
    {"principal": "user2@contoso.com", "persona": "data_scientist"},
    {"principal": "user3@contoso.com", "persona": "data_scientist"},
]
TUTORIAL_WORKSPACE = {
    "subscription_id": TUTORIAL_SUBSCRIPTION,
    "region": "eastus2",
    "department": "bgmr",
    "team": "bluegranit",
    "region_abbv": "e2",
    "environment": "dev",
    "custom_name": "",
    "security_group": "datasciencegroup",
    "data_lake": "on",
}


def rows(prefix: str, filled: list[dict[str, str]], blank: dict[str, str], blanks: int = 2) -> dict[str, Any]:
    """What the browser posts for a formset: the filled rows, then untouched blank rows."""
    all_rows = [*filled, *([blank] * blanks)]
    data: dict[str, Any] = {f"{prefix}-TOTAL_FORMS": str(len(all_rows)), f"{prefix}-INITIAL_FORMS": "0"}
    for i, row in enumerate(all_rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


def tutorial_post(
    action: str = "draft", clusters: list[dict[str, str]] | None = None, **workspace: str
) -> dict[str, Any]:
    """The tutorial's config.yml, typed into the new-workspace page."""
    data: dict[str, Any] = {**TUTORIAL_WORKSPACE, **workspace, "action": action}
    if not data["data_lake"]:
        del data["data_lake"]
    data.update(rows("clusters", TUTORIAL_CLUSTER_ROWS if clusters is None else clusters, BLANK_CLUSTER))
    data.update(rows("members", TUTORIAL_MEMBER_ROWS, BLANK_MEMBER))
    return data


def messages_of(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in get_messages(response.wsgi_request)]


def field_error(page: str, field_id: str) -> str:
    """The error text shown for a field, checking the input points at it with aria-describedby."""
    match = re.search(
        rf'<div class="invalid-feedback d-block" id="{field_id}_error">(.*?)</div>\s*</div>', page, re.S
    )
    assert match, f"no error shown for {field_id}"
    tag = re.search(rf'<(?:input|select)[^>]*id="{field_id}"[^>]*>', page)
    assert tag and f"{field_id}_error" in tag.group(0) and 'aria-invalid="true"' in tag.group(0)
    return re.sub(r"<[^>]+>", " ", match.group(1))


class _Inputs(HTMLParser):
    """Collects form controls, labels and headings of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str] = []
        self.labelled: set[str] = set()
        self.headings: list[int] = []
        self._in_template = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "template":
            self._in_template += 1
        elif tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            if not self._in_template:
                self.controls.append(a.get("id") or "<no id>")
        elif tag == "label" and a.get("for"):
            self.labelled.add(str(a["for"]))
        elif re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self._in_template -= 1


def assert_accessible(page: str) -> None:
    """Every control has a label, and headings never skip a level on the way down."""
    parsed = _Inputs()
    parsed.feed(page)
    assert [c for c in parsed.controls if c not in parsed.labelled] == []
    assert parsed.headings[0] == 1
    assert all(b <= a + 1 for a, b in zip(parsed.headings, parsed.headings[1:], strict=False))
