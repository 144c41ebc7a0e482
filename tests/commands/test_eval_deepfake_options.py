"""``identix-stream eval-deepfake`` refuses bad degradation settings with an argparse error (exit 2)
that names the value, before any model or data is read."""

from __future__ import annotations

import pytest

from identix_stream.cli import main


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--downscale", "1.5", "downscale factor must be in (0, 1], got 1.5"),
    ("--downscale", "0", "downscale factor must be in (0, 1], got 0.0"),
    ("--downscale", "half", "expected a number, got 'half'"),
    ("--crf", "60", "H.264 CRF must be 0-51, got 60"),
    ("--crf", "26.5", "expected an integer, got '26.5'"),
    ("--jpeg", "0", "JPEG quality must be 1-100, got 0"),
])
def test_a_bad_degradation_is_refused(option: str, value: str, message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval-deepfake", "--real", "/nonexistent/real", "--fake", "/nonexistent/fake", option, value])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
