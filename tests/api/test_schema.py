"""The OpenAPI 3 schema validates and names every endpoint; its documentation page needs nothing from a CDN."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.validation import validate_schema

from tests.api.conftest import Api, token_of

pytestmark = pytest.mark.django_db


def _api_routes() -> set[str]:
    """Every route under /api/v1/ the URLconf serves, as OpenAPI paths ({id} for a parameter)."""
    found: set[str] = set()

    def walk(patterns: list, prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and route.startswith("api/v1/"):
                path = "/" + route.replace("^", "").replace("$", "")
                # drf-spectacular names a primary key "id".
                path = re.sub(
                    r"\(\?P<(\w+)>[^)]+\)", lambda m: "{id}" if m[1] == "pk" else f"{{{m[1]}}}", path
                )
                path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
                found.add(path)

    walk(get_resolver().url_patterns, "")
    return {p for p in found if not p.endswith(("/schema/", "/docs/"))}


def test_the_schema_is_valid_openapi_3_and_holds_every_endpoint(alice):
    response = Api(token_of(alice)).get("schema/", format="json")
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    routes = _api_routes()
    assert "/api/v1/requests/{id}/approve/" in routes and len(routes) >= 20
    assert routes <= set(schema["paths"]), routes - set(schema["paths"])
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_documentation_page_is_served_from_the_portals_static_files(alice):
    browser = Client()
    browser.force_login(alice)
    page = browser.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "https://" not in html and "<script>" not in html  # no CDN, no inline script (the CSP forbids it)
    init = browser.get("/api/v1/docs/?script=")
    assert init.status_code == 200 and "SwaggerUIBundle" in init.content.decode()
