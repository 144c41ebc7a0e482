"""Settings, parsed once from the environment into a frozen object.

Every bad value raises ``ConfigError`` naming the variable, so a misconfigured deployment stops at
start-up instead of failing on the first request. Secrets have no default in production; a local
run generates a SECRET_KEY once and keeps it in the data directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from identix_stream.errors import ConfigError

# parser precisions (inference/parser_runtime.py); "auto" times the CPU candidates at warm-up
PRECISIONS = ("fp32", "bf16", "fp16", "ort-fp32", "ort-int8")
# A track's image deepfake factors are refreshed at most this often (stream seconds) and reused in
# between: in uploaded videos, and in live streams, whose frames share the CPU in real time. Live
# streams refresh them 4 times a second, the most evidence the running confidence counts per second
# (core/deepfake_fusion.EVIDENCE_PER_S): at 0.1 s, 4 live streams on 2 cores got 10.8 results/s
# each, at 0.25 s 13.4 (bench, idle, 2026-12-07); read every 0.25 s, the first 3 s of the check videos end
# in the same states, p within 0.04 (docs/deepfake.md, session 20).
DEEPFAKE_INTERVAL_S = 0.1
LIVE_DEEPFAKE_INTERVAL_S = 0.25

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent
DEFAULT_MODEL_PATH = REPO_ROOT / "models" / "face_parser.pt"
SECRET_KEY_FILE = "secret_key"
MIN_SECRET_KEY_CHARS = 32

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, default).strip()


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range [{lo}, {hi}]")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not (lo <= value <= hi):  # also rejects NaN
        raise ConfigError(f"{name}={value} is out of range [{lo}, {hi}]")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _text(env, name, default).lower() or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def _ice_servers(env: Mapping[str, str], name: str) -> tuple[dict[str, Any], ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(value, list) or not all(isinstance(s, dict) and "urls" in s for s in value):
        raise ConfigError(f'{name} must be a JSON list of objects with "urls", e.g. [{{"urls": "stun:host:3478"}}]')
    return tuple(value)


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name, "").strip()
    return Path(raw).expanduser().resolve() if raw else default


def _secret_key(env: Mapping[str, str], mode: str, data_dir: Path) -> str:
    """Production: SECRET_KEY must be set and long. Local: the env value, else one kept in data_dir."""
    raw = env.get("SECRET_KEY", "").strip()
    if raw:
        if len(raw) < MIN_SECRET_KEY_CHARS:
            raise ConfigError(f"SECRET_KEY is too short ({len(raw)} chars); use at least {MIN_SECRET_KEY_CHARS}")
        return raw
    if mode == "production":
        raise ConfigError(
            "SECRET_KEY is required when IDENTIX_ENV=production "
            '(generate one with: python3 -c "import secrets; print(secrets.token_urlsafe(48))")'
        )
    key_file = data_dir / SECRET_KEY_FILE
    try:
        if key_file.is_file():
            key = key_file.read_text(encoding="utf-8").strip()
            if len(key) >= MIN_SECRET_KEY_CHARS:
                return key
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key + "\n")
        return key
    except OSError as exc:
        raise ConfigError(f"IDENTIX_DATA_DIR={data_dir}: cannot keep the generated secret key there ({exc})") from None


@dataclass(frozen=True)
class Settings:
    """All run-time configuration. Build with ``Settings.from_env()``; tests use ``dataclasses.replace``."""

    env: str = "local"
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = field(default="", repr=False)
    data_dir: Path = field(default_factory=lambda: Path("var").resolve())
    public_url: str = ""
    trust_proxy: bool = False
    # user store
    mongodb_uri: str = field(default="", repr=False)
    mongodb_db: str = "identix"
    db_timeout_ms: int = 2000
    # models and inference
    model_path: Path = DEFAULT_MODEL_PATH
    load_models: bool = True
    device: str = "auto"
    precision: str = "auto"
    torch_threads: int = 2
    max_batch: int = 8
    max_wait_ms: float = 4.0
    queue_size: int = 32
    deepfake_interval_s: float = DEEPFAKE_INTERVAL_S
    live_deepfake_interval_s: float = LIVE_DEEPFAKE_INTERVAL_S
    photo_orientation_search: bool = True
    # access and limits
    allow_anonymous: bool = False
    max_upload_bytes: int = 200 * 1024 * 1024
    max_request_bytes: int = 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_frame_bytes: int = 4 * 1024 * 1024
    max_live_fps: float = 60.0
    ice_servers: tuple[dict[str, Any], ...] = ()
    job_ttl_s: int = 3600
    max_concurrent_uploads: int = 2
    # accounts
    bcrypt_rounds: int = 12
    session_ttl_s: int = 14 * 24 * 3600
    reset_token_ttl_s: int = 3600
    verify_token_ttl_s: int = 48 * 3600
    login_max_failures: int = 5
    login_ip_max_failures: int = 30
    login_window_s: int = 900
    register_max_per_ip: int = 20
    register_window_s: int = 3600
    reset_max_per_account: int = 3
    reset_max_per_ip: int = 10
    reset_window_s: int = 3600
    # mail
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = True
    mail_from: str = "identix-stream <no-reply@localhost>"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def user_store(self) -> str:
        """Which UserRepository the app uses: "mongodb" when MONGODB_URI is set, else "sqlite"."""
        return "mongodb" if self.mongodb_uri else "sqlite"

    @property
    def base_url(self) -> str:
        """Absolute base for links in mail (IDENTIX_PUBLIC_URL, else the bound host/port)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        mode = _choice(env, "IDENTIX_ENV", "local", ("local", "production"))
        data_dir = _path(env, "IDENTIX_DATA_DIR", Path("var").resolve())
        public_url = _text(env, "IDENTIX_PUBLIC_URL", "")
        if public_url and not public_url.startswith(("http://", "https://")):
            raise ConfigError(f"IDENTIX_PUBLIC_URL={public_url!r} must start with http:// or https://")
        mongodb_uri = _text(env, "MONGODB_URI", "")
        if mongodb_uri and not mongodb_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError("MONGODB_URI must start with mongodb:// or mongodb+srv://")
        return cls(
            env=mode,
            host=_text(env, "IDENTIX_HOST", "127.0.0.1") or "127.0.0.1",
            port=_int(env, "PORT", 8000, 1, 65535),
            secret_key=_secret_key(env, mode, data_dir),
            data_dir=data_dir,
            public_url=public_url,
            trust_proxy=_bool(env, "IDENTIX_TRUST_PROXY", False),
            mongodb_uri=mongodb_uri,
            mongodb_db=_text(env, "IDENTIX_MONGODB_DB", "identix") or "identix",
            db_timeout_ms=_int(env, "IDENTIX_DB_TIMEOUT_MS", 2000, 100, 60_000),
            model_path=_path(env, "IDENTIX_MODEL_PATH", DEFAULT_MODEL_PATH),
            load_models=_bool(env, "IDENTIX_LOAD_MODELS", True),
            device=_choice(env, "IDENTIX_DEVICE", "auto", ("auto", "cpu", "cuda")),
            precision=_choice(env, "IDENTIX_PRECISION", "auto", ("auto", *PRECISIONS)),
            torch_threads=_int(env, "IDENTIX_TORCH_THREADS", 2, 1, 256),
            max_batch=_int(env, "IDENTIX_MAX_BATCH", 8, 1, 256),
            max_wait_ms=_float(env, "IDENTIX_MAX_WAIT_MS", 4.0, 0.0, 1000.0),
            queue_size=_int(env, "IDENTIX_QUEUE_SIZE", 32, 1, 10_000),
            deepfake_interval_s=_float(env, "IDENTIX_DEEPFAKE_INTERVAL_S", DEEPFAKE_INTERVAL_S, 0.0, 10.0),
            live_deepfake_interval_s=_float(env, "IDENTIX_LIVE_DEEPFAKE_INTERVAL_S", LIVE_DEEPFAKE_INTERVAL_S,
                                            0.0, 10.0),
            photo_orientation_search=_bool(env, "IDENTIX_PHOTO_ORIENTATION_SEARCH", True),
            allow_anonymous=_bool(env, "IDENTIX_ALLOW_ANONYMOUS", False),
            max_upload_bytes=_int(env, "IDENTIX_MAX_UPLOAD_MB", 200, 1, 100_000) * 1024 * 1024,
            max_request_bytes=_int(env, "IDENTIX_MAX_REQUEST_KB", 1024, 1, 1_000_000) * 1024,
            max_image_pixels=_int(env, "IDENTIX_MAX_PIXELS", 40_000_000, 1, 1_000_000_000),
            max_frame_bytes=_int(env, "IDENTIX_MAX_FRAME_BYTES", 4 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
            max_live_fps=_float(env, "IDENTIX_MAX_LIVE_FPS", 60.0, 0.1, 1000.0),
            ice_servers=_ice_servers(env, "IDENTIX_ICE_SERVERS"),
            job_ttl_s=_int(env, "IDENTIX_JOB_TTL_S", 3600, 1, 30 * 24 * 3600),
            max_concurrent_uploads=_int(env, "IDENTIX_MAX_UPLOADS", 2, 1, 1000),
            bcrypt_rounds=_int(env, "IDENTIX_BCRYPT_ROUNDS", 12, 12, 16),
            session_ttl_s=_int(env, "IDENTIX_SESSION_TTL_S", 14 * 24 * 3600, 60, 365 * 24 * 3600),
            reset_token_ttl_s=_int(env, "IDENTIX_RESET_TOKEN_TTL_S", 3600, 60, 7 * 24 * 3600),
            verify_token_ttl_s=_int(env, "IDENTIX_VERIFY_TOKEN_TTL_S", 48 * 3600, 60, 30 * 24 * 3600),
            login_max_failures=_int(env, "IDENTIX_LOGIN_MAX_FAILURES", 5, 1, 10_000),
            login_ip_max_failures=_int(env, "IDENTIX_LOGIN_IP_MAX_FAILURES", 30, 1, 100_000),
            login_window_s=_int(env, "IDENTIX_LOGIN_WINDOW_S", 900, 1, 7 * 24 * 3600),
            register_max_per_ip=_int(env, "IDENTIX_REGISTER_MAX_PER_IP", 20, 1, 100_000),
            register_window_s=_int(env, "IDENTIX_REGISTER_WINDOW_S", 3600, 1, 7 * 24 * 3600),
            reset_max_per_account=_int(env, "IDENTIX_RESET_MAX_PER_ACCOUNT", 3, 1, 10_000),
            reset_max_per_ip=_int(env, "IDENTIX_RESET_MAX_PER_IP", 10, 1, 100_000),
            reset_window_s=_int(env, "IDENTIX_RESET_WINDOW_S", 3600, 1, 7 * 24 * 3600),
            smtp_host=_text(env, "IDENTIX_SMTP_HOST", ""),
            smtp_port=_int(env, "IDENTIX_SMTP_PORT", 587, 1, 65535),
            smtp_user=_text(env, "IDENTIX_SMTP_USER", ""),
            smtp_password=env.get("IDENTIX_SMTP_PASSWORD", ""),
            smtp_starttls=_bool(env, "IDENTIX_SMTP_STARTTLS", True),
            mail_from=_text(env, "IDENTIX_MAIL_FROM", "identix-stream <no-reply@localhost>")
            or "identix-stream <no-reply@localhost>",
        )
