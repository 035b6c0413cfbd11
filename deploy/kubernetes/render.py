"""Render the kustomize base and an overlay offline, for validation in CI (no cluster, no kustomize binary).

Only what these manifests use: ``resources``, ``namespace``, ``images``, ``labels`` (metadata only) and
``patches`` as strategic merges of maps (lists are replaced). Deploy with ``kubectl apply -k`` (the real
kustomize); this is the offline check that what it reads is valid.

    python deploy/kubernetes/render.py OVERLAY_DIR OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in patch.items()}}
    return patch


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def render(directory: Path) -> list[dict[str, Any]]:
    """The documents a kustomization makes."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        path = directory / resource
        if path.is_dir():
            docs.extend(render(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for patch in spec.get("patches", []):
        change = yaml.safe_load((directory / patch["path"]).read_text())
        matches = [i for i, d in enumerate(docs) if _key(d) == _key(change)]
        if not matches:
            raise SystemExit(f"{directory / patch['path']}: no {_key(change)} to patch")
        for i in matches:
            docs[i] = _merge(docs[i], change)
    for doc in docs:
        meta = doc["metadata"]
        for group in spec.get("labels", []):
            meta["labels"] = {**meta.get("labels", {}), **group["pairs"]}
        if spec.get("namespace"):
            meta["namespace"] = spec["namespace"]
    images = {
        i["name"]: f"{i.get('newName', i['name'])}:{i.get('newTag', 'latest')}"
        for i in spec.get("images", [])
    }
    for doc in docs:
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            container["image"] = images.get(container["image"], container["image"])
    return docs


def main(overlay: str, out: str) -> None:
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    for doc in render(Path(overlay)):
        kind, name = _key(doc)
        (target / f"{kind.lower()}-{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


if __name__ == "__main__":
    main(*sys.argv[1:3])
