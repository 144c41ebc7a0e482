"""Settings.from_env: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from identix_stream.config import DEFAULT_MODEL_PATH, REPO_ROOT, Settings
from identix_stream.errors import ConfigError

KEY = "k" * 40


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"IDENTIX_DATA_DIR": str(tmp_path / "data"), **values}


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    assert (s.env, s.host, s.port) == ("local", "127.0.0.1", 8000)
    assert s.data_dir == (tmp_path / "data").resolve()
    assert s.model_path == DEFAULT_MODEL_PATH == REPO_ROOT / "models" / "face_parser.pt"
    assert s.load_models and s.device == "auto" and s.torch_threads == 2
    assert (s.max_batch, s.max_wait_ms, s.queue_size) == (8, 4.0, 32)
    assert not s.allow_anonymous and s.max_upload_bytes == 200 * 1024 * 1024
    assert s.max_image_pixels == 40_000_000 and s.max_frame_bytes == 4 * 1024 * 1024 and s.max_live_fps == 60
    assert s.ice_servers == () and s.job_ttl_s == 3600 and s.max_concurrent_uploads == 2
    assert s.user_store == "sqlite" and s.bcrypt_rounds >= 12
    assert s.base_url == "http://127.0.0.1:8000"
    assert s.photo_orientation_search
    assert (s.deepfake_interval_s, s.live_deepfake_interval_s) == (0.1, 0.25)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


def test_model_path_default_does_not_depend_on_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env(env(tmp_path)).model_path == DEFAULT_MODEL_PATH


def test_values_are_parsed(tmp_path: Path) -> None:
    s = Settings.from_env(
        env(
            tmp_path,
            IDENTIX_ENV="production",
            SECRET_KEY=KEY,
            PORT="9001",
            MONGODB_URI="mongodb://127.0.0.1:27017/",
            IDENTIX_LOAD_MODELS="no",
            IDENTIX_ALLOW_ANONYMOUS="1",
            IDENTIX_DEVICE="CPU",
            IDENTIX_MAX_UPLOAD_MB="5",
            IDENTIX_MAX_WAIT_MS="2.5",
            IDENTIX_ICE_SERVERS='[{"urls": "stun:127.0.0.1:3478"}]',
            IDENTIX_MODEL_PATH=str(tmp_path / "m.pt"),
            IDENTIX_PHOTO_ORIENTATION_SEARCH="off",
            IDENTIX_LIVE_DEEPFAKE_INTERVAL_S="0.5",
        )
    )
    assert s.production and s.port == 9001 and s.secret_key == KEY
    assert s.user_store == "mongodb" and not s.load_models and s.allow_anonymous and s.device == "cpu"
    assert s.max_upload_bytes == 5 * 1024 * 1024 and s.max_wait_ms == 2.5
    assert s.ice_servers == ({"urls": "stun:127.0.0.1:3478"},)
    assert s.model_path == tmp_path / "m.pt" and not s.photo_orientation_search
    assert s.live_deepfake_interval_s == 0.5 and s.deepfake_interval_s == 0.1
    assert KEY not in repr(s) and "mongodb://" not in repr(s)  # secrets stay out of logs


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PORT", "eighty", "PORT='eighty' is not an integer"),
        ("PORT", "70000", "PORT=70000 is out of range"),
        ("IDENTIX_ENV", "staging", "IDENTIX_ENV='staging' must be one of local, production"),
        ("IDENTIX_LOAD_MODELS", "maybe", "IDENTIX_LOAD_MODELS='maybe' is not a boolean"),
        ("IDENTIX_DEVICE", "tpu", "IDENTIX_DEVICE='tpu' must be one of"),
        ("IDENTIX_MAX_WAIT_MS", "nan", "IDENTIX_MAX_WAIT_MS=nan is out of range"),
        ("IDENTIX_MAX_BATCH", "0", "IDENTIX_MAX_BATCH=0 is out of range"),
        ("IDENTIX_LIVE_DEEPFAKE_INTERVAL_S", "-1", "IDENTIX_LIVE_DEEPFAKE_INTERVAL_S=-1.0 is out of range"),
        ("IDENTIX_ICE_SERVERS", "[{", "IDENTIX_ICE_SERVERS is not valid JSON"),
        ("IDENTIX_ICE_SERVERS", '{"urls": "x"}', "IDENTIX_ICE_SERVERS must be a JSON list"),
        ("MONGODB_URI", "postgres://x", "MONGODB_URI must start with mongodb://"),
        ("IDENTIX_BCRYPT_ROUNDS", "10", "IDENTIX_BCRYPT_ROUNDS=10 is out of range [12, 16]"),
        ("SECRET_KEY", "short", "SECRET_KEY is too short"),
        ("IDENTIX_PUBLIC_URL", "example.org", "IDENTIX_PUBLIC_URL='example.org' must start with http"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env(tmp_path, **{name: value}))
    assert fragment in info.value.message


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY is required when IDENTIX_ENV=production"):
        Settings.from_env(env(tmp_path, IDENTIX_ENV="production"))
    assert not (tmp_path / "data" / "secret_key").exists()


def test_local_mode_generates_and_keeps_a_secret_key(tmp_path: Path) -> None:
    first = Settings.from_env(env(tmp_path))
    key_file = tmp_path / "data" / "secret_key"
    assert len(first.secret_key) >= 32 and key_file.read_text().strip() == first.secret_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Settings.from_env(env(tmp_path)).secret_key == first.secret_key  # same key after a restart
    assert Settings.from_env(env(tmp_path, SECRET_KEY=KEY)).secret_key == KEY  # env wins


def test_unusable_data_dir_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="IDENTIX_DATA_DIR="):
        Settings.from_env({"IDENTIX_DATA_DIR": str(blocker / "sub")})
