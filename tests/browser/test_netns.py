"""Runs the browser suite inside a loopback-only network namespace when this process may create one
(root with ``unshare``): Chromium, the server and its WebRTC peer then cannot reach anything but
127.0.0.1. Inside the namespace (or where none can be made) the suite runs directly instead."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import INNER_ENV, ROOT, netns_state

pytestmark = [pytest.mark.browser, pytest.mark.data, pytest.mark.slow]


def test_browser_suite_in_a_loopback_only_namespace(shared_data: Path) -> None:
    """``shared_data``: the inner suite needs the shared videos and photos; skip here, not inside."""
    state = netns_state()
    if state != "wrapped":
        pytest.skip(f"browser tests run directly here ({state})")
    inner = [sys.executable, "-m", "pytest", "tests/browser/test_ui.py", "-q", "-rs", "-p", "no:cacheprovider"]
    script = f"ip link set lo up && exec {shlex.join(inner)}"
    env = {**os.environ, INNER_ENV: "1"}
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500
    )
    output = (proc.stdout + proc.stderr)[-8000:]
    print(output)
    assert proc.returncode == 0, f"browser suite failed in the namespace (rc {proc.returncode}):\n{output}"
    assert " passed" in output, output
