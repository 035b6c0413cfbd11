"""The REST API, called as scripts call it: a bearer token in the Authorization header, JSON in and out."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts import tokens
from tests.provisioning.conftest import active_workspace  # noqa: F401  (a fixture, used by name)


class Api:
    """A client that sends one bearer token (or none) and JSON bodies."""

    def __init__(self, token: str = "") -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **query: Any) -> Any:
        return self.client.get(f"/api/v1/{path}", query, headers=self.headers)

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(
            f"/api/v1/{path}",
            body if body is not None else {},
            content_type="application/json",
            headers=self.headers,
        )

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(
            f"/api/v1/{path}", body, content_type="application/json", headers=self.headers
        )


def token_of(user: Any, name: str = "script", days: int = 30) -> str:
    return tokens.token_create(user=user, name=name, days=days).token


@pytest.fixture
def api_as():  # type: ignore[no-untyped-def]
    """``api_as(user)``: an API client with a new personal access token of that user."""

    def make(user: Any, name: str = "script") -> Api:
        return Api(token_of(user, name))

    return make
