"""Shared fixtures. Tests that need ../shared/data are marked ``data`` and skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.mongo_server import mongodb_uri  # noqa: F401  (session fixture: a real MongoDB wire server)

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("IDENTIX_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data root; skips the test with a reason when it is not there."""
    if not (DATA_DIR / "README.md").is_file():
        pytest.skip(f"needs the shared data set at {DATA_DIR} (set IDENTIX_SHARED_DATA to point elsewhere)")
    return DATA_DIR


@pytest.fixture(scope="session")
def parser_model() -> Path:
    """The shipped parsing model (or IDENTIX_MODEL_PATH); skips with a reason when there is none."""
    path = Path(os.environ.get("IDENTIX_MODEL_PATH") or ROOT / "models" / "face_parser.pt")
    if not path.is_file():
        pytest.skip(f"needs a parsing model at {path}")
    return path
