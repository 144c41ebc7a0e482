"""``identix-stream train-deepfake`` and ``eval-deepfake`` refuse bad option values with an argparse
error (exit 2) that names the problem, before any model or data is read."""

from __future__ import annotations

import pytest

from identix_stream.cli import main

TRAIN = ["train-deepfake", "sbi"]
EVAL = ["eval-deepfake", "--real", "/nonexistent/real", "--fake", "/nonexistent/fake"]


@pytest.mark.parametrize(("command", "option", "value", "message"), [
    (TRAIN, "--input-size", "300", "--input-size must be"),
    (TRAIN, "--input-size", "63", "--input-size must be"),
    (TRAIN, "--input-size", "big", "--input-size must be"),
    (TRAIN, "--small-codec", "1.5", "expected a number in 0-1"),
    (TRAIN, "--small-codec", "-0.1", "expected a number in 0-1"),
    (TRAIN, "--small-codec", "often", "expected a number in 0-1"),
    (TRAIN, "--seam-weight", "-1", "expected a number >= 0, got -1.0"),
    (TRAIN, "--seam-weight", "much", "expected a number >= 0, got 'much'"),
    (TRAIN, "--seam-weight", "nan", "expected a number >= 0, got nan"),
    (TRAIN, "--workers", "-2", "expected a whole number >= 0, got -2"),
    (TRAIN, "--workers", "two", "expected a whole number >= 0, got 'two'"),
    (TRAIN, "--width", "128", "expected a whole number in 4-64, got 128"),
    (TRAIN, "--width", "8.5", "expected a whole number in 4-64, got '8.5'"),
    (EVAL, "--downscale", "1.5", "downscale factor must be in (0, 1], got 1.5"),
    (EVAL, "--downscale", "0", "downscale factor must be in (0, 1], got 0.0"),
    (EVAL, "--downscale", "half", "expected a number, got 'half'"),
    (EVAL, "--upscale", "0.5", "upscale factor must be in [1, 4], got 0.5"),
    (EVAL, "--upscale", "5", "upscale factor must be in [1, 4], got 5.0"),
    (EVAL, "--crf", "60", "H.264 CRF must be 0-51, got 60"),
    (EVAL, "--crf", "26.5", "expected an integer, got '26.5'"),
    (EVAL, "--jpeg", "0", "JPEG quality must be 1-100, got 0"),
])
def test_a_bad_option_value_is_refused(command: list[str], option: str, value: str, message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command, option, value])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_downscale_and_upscale_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*EVAL, "--downscale", "0.5", "--upscale", "2"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
