"""The Kubernetes manifests (deploy/kubernetes): the production overlay renders, validates strictly against
Kubernetes' schemas offline, and holds what operations rely on."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from provisioning.queue import QUEUE_NAME

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("render", ROOT / "deploy/kubernetes/render.py")
assert _spec is not None and _spec.loader is not None
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)
DOCS: list[dict[str, Any]] = render.render(ROOT / "deploy/kubernetes/overlays/production")
BY_KEY = {(d["kind"], d["metadata"]["name"]): d for d in DOCS}
CRDS = {"ScaledObject", "TriggerAuthentication"}  # KEDA's: no schema is bundled


@pytest.mark.parametrize(
    "doc", [d for d in DOCS if d["kind"] not in CRDS], ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_each_manifest_validates_strictly(doc):
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def _pods() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in DOCS
        if d["kind"] in ("Deployment", "Job")
    ]


def test_every_container_is_non_root_read_only_bounded_and_from_the_registry():
    for name, pod in _pods():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for c in pod["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert c["resources"]["requests"] and c["resources"]["limits"], name
            assert c["image"] == "contoso.azurecr.io/azureml-portal:2026.12.1", name


def test_the_web_is_probed_on_healthz_and_readyz_and_kept_available():
    web = BY_KEY[("Deployment", "portal-web")]
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["spec"]["replicas"] == 3  # the overlay's
    assert BY_KEY[("PodDisruptionBudget", "portal-web")]["spec"]["minAvailable"] == 1


def test_the_worker_uses_workload_identity_and_keda_scales_it_on_the_queue():
    worker = BY_KEY[("Deployment", "portal-worker")]["spec"]["template"]
    assert worker["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert {"name": "AZURE_CREDENTIAL", "value": "workload_identity"} in worker["spec"]["containers"][0][
        "env"
    ]
    scaled = BY_KEY[("ScaledObject", "portal-worker")]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "portal-worker"
    assert scaled["triggers"][0]["metadata"]["listName"] == f"rq:queue:{QUEUE_NAME}"
    assert BY_KEY[("Deployment", "portal-scheduler")]["spec"]["replicas"] == 1


def test_no_secret_value_is_in_the_manifests():
    config = BY_KEY[("ConfigMap", "portal-config")]["data"]
    assert not {
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "ENTRA_CLIENT_SECRET",
        "AZURE_CLIENT_SECRET",
    } & set(config)
    for name, pod in _pods():
        for c in pod["containers"]:
            assert all("value" not in e or "SECRET" not in e["name"] for e in c.get("env", [])), name
