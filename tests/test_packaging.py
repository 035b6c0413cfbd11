"""What the production image ships: not the stand-in (it mints tokens and certificates), nor its tools."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_image_leaves_the_stand_in_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {"provisioning/standin", "tests"} <= ignored
    # The image copies the tree as a whole, so .dockerignore is what keeps the stand-in out.
    assert "COPY . ." in (ROOT / "Dockerfile").read_text()


def test_the_stand_ins_certificate_tool_is_a_development_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = " ".join(project["project"]["dependencies"])
    assert "trustme" not in runtime
    assert any(d.startswith("trustme") for d in project["dependency-groups"]["dev"])
