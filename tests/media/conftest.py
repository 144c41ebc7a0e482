"""Fixtures for the media tests: the test videos of tests/media/videofiles.py, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media.videofiles import build_video_files


@pytest.fixture(scope="session")
def video_files(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_video_files(shared_data, tmp_path_factory.mktemp("videos"))
