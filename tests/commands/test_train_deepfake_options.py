"""``identix-stream train-deepfake`` refuses bad option values with an argparse error (exit 2) that
names the problem, before any data is read."""

from __future__ import annotations

import pytest

from identix_stream.cli import main


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--input-size", "300", "--input-size must be"),
    ("--input-size", "63", "--input-size must be"),
    ("--input-size", "big", "--input-size must be"),
    ("--small-codec", "1.5", "expected a number in 0-1"),
    ("--small-codec", "-0.1", "expected a number in 0-1"),
    ("--small-codec", "often", "expected a number in 0-1"),
])
def test_a_bad_option_value_is_refused(option: str, value: str, message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train-deepfake", "sbi", option, value])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
