"""Production's JSON log lines: each carries its web request's id, or its run and step and Azure's correlation
id; no token reaches one."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from django.test import Client

from portal.log_context import ContextFilter, JsonLines
from provisioning.engine import executor as engine
from provisioning.models import Run
from tests.api.conftest import Api, token_of
from tests.provisioning.test_faults import MEMBER, _approved, _small_spec

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(run)s %(step)s %(correlation_id)s"


@pytest.fixture
def json_lines() -> Iterator[list[str]]:
    """Every log line (DEBUG and up) as production writes it (settings.LOGGING's json formatter and filter)."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    handler.setFormatter(JsonLines(FORMAT))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.django_db
def test_a_web_requests_lines_carry_its_id_and_the_answer_returns_it(json_lines, alice):
    logger = logging.getLogger("provisioning.views")
    client = Client()
    client.force_login(alice)
    answer = client.get("/no-such-page/", headers={"X-Request-ID": "proxy-given-42"})
    assert answer["X-Request-ID"] == "proxy-given-42"
    logger.info("outside any request")
    found = [json.loads(line) for line in json_lines]
    assert any(f["request_id"] == "proxy-given-42" and f["logger"] == "django.request" for f in found)
    assert found[-1]["request_id"] == "" and found[-1]["message"] == "outside any request"
    forged = client.get("/no-such-page/", headers={"X-Request-ID": "x\nforged line"})["X-Request-ID"]
    assert forged != "x\nforged line" and len(forged) == 32
    client.get("/accounts/callback/", {"code": "a-secret-code", "state": "s"})
    assert not [line for line in json_lines if "a-secret-code" in line]  # no request's query string


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_only")
def test_a_steps_lines_carry_the_run_the_step_and_azures_correlation_id(
    json_lines, policy, alice, bob, standin, azure_clients, rq_queue, monkeypatch
):
    monkeypatch.setattr(engine, "STEP_BACKOFF", (0.05,))
    standin.add_user(MEMBER)
    # Both storage accounts share these: each outlasts azure-core's own retries (4 calls) at least once.
    standin.fail_next("storage.create", status=503, retry_after=0.05, times=12)
    cr = _approved(alice, bob, _small_spec())
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    retried = [json.loads(line) for line in json_lines if "retrying" in line]
    assert retried, "no step was retried: nothing was tested"
    line = retried[0]
    assert line["run"] == f"request-{cr.pk}-run-1" and line["step"].startswith("storage_account:")
    assert line["correlation_id"], line


@pytest.mark.django_db
def test_no_token_reaches_a_log_line(json_lines, alice):
    token = token_of(alice)
    assert Api(token).get("requests/").status_code == 200
    assert Api(token[:-2] + "xx").get("requests/").status_code == 401
    assert Api("eyJhbGciOiJSUzI1NiJ9.e30.c2ln").get("requests/").status_code == 401
    assert json_lines, "nothing was logged: nothing was tested"
    assert not [line for line in json_lines if token[5:] in line or "c2ln" in line]
