"""The package is versioned with the service."""

import re
from pathlib import Path

import tomllib

import gns3central

ROOT = Path(__file__).resolve().parents[3]


def test_version_equals_the_workspace_version() -> None:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    workspace = cargo["workspace"]["package"]["version"]
    pyproject = tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text())
    assert pyproject["project"]["version"] == workspace
    assert gns3central.__version__ == workspace
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", workspace)
