"""Settings: read once from ``PODIUM_*`` environment variables and an optional TOML file, then frozen."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from signaling.turn import valid_ice_url
from webhooks.delivery import targets_of
from webhooks.errors import InvalidTarget

DEFAULT_PROGRAMME = Path(__file__).parent / "programmes" / "summit.toml"


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it and why."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a podium node is configured with. Tests build it directly."""

    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str = field(default="", repr=False)  # may carry the store's password
    redis_cluster: bool = False
    data_dir: Path = Path("data")
    programme: Path = DEFAULT_PROGRAMME
    demo: bool = False
    node_id: str = ""
    key_prefix: str = "podium"
    jwt_secret: str = field(default="", repr=False)
    jwt_issuer: str = "podium"
    jwt_audience: str = "podium"
    allowed_origins: tuple[str, ...] = ()
    metrics_allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    metrics_token: str = field(default="", repr=False)
    history_size: int = 10_000
    auth_timeout: float = 5.0
    max_frame_bytes: int = 64 * 1024
    send_buffer_bytes: int = 256 * 1024
    heartbeat: float = 20.0
    rate: float = 10.0
    burst: float = 20.0
    drain_seconds: float = 5.0
    log_level: str = "INFO"
    log_json: bool = True
    public_url: str = ""
    questions_per_minute: int = 5
    store_connections: int = 64
    held_words: tuple[str, ...] = ()
    ice_servers: tuple[str, ...] = ()
    turn_secret: str = field(default="", repr=False)
    turn_ttl: int = 600
    allow_private_candidates: bool = False
    max_sdp_bytes: int = 16 * 1024
    stream_max_listeners: int = 200
    stream_max_channels: int = 16
    stream_media_timeout: float = 5.0
    stream_record: bool = True
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = field(default="", repr=False)
    webhook_attempts: int = 8
    webhook_backoff: float = 1.0
    webhook_backoff_cap: float = 60.0
    webhook_timeout: float = 10.0
    series_period: float = 15.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def origins(self) -> frozenset[str]:
        """The WebSocket Origin allow-list; the node's own URL is always in it."""
        own = {self.base_url, f"http://localhost:{self.port}", f"http://127.0.0.1:{self.port}"}
        return frozenset(o.rstrip("/") for o in (*self.allowed_origins, *own))

    @property
    def base_url(self) -> str:
        """Where people reach this node (for links)."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def _convert(name: str, value: Any, source: str) -> Any:
    kind = Settings.__dataclass_fields__[name].type
    try:
        if kind in ("int",):
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind in ("float",):
            return float(value)
        if kind in ("bool",):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind in ("Path",):
            return Path(str(value))
        if kind in ("tuple[str, ...]",):
            if isinstance(value, list | tuple):
                return tuple(str(v).strip() for v in value if str(v).strip())
            return tuple(v.strip() for v in str(value).split(",") if v.strip())
        if kind in ("str",):
            if not isinstance(value, str):
                raise ValueError
            return value
    except ValueError:
        raise SettingsError(f"{source}: {name} must be of type {kind}, got {value!r}") from None
    raise SettingsError(f"{source}: {name} cannot be set")


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    file: Path | None = None,
) -> Settings:
    """Builds the settings: defaults < TOML file (``PODIUM_CONFIG``) < environment < CLI overrides.

    Raises:
        SettingsError: an unknown key, a value of the wrong type, or an out-of-range value.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = file or (Path(environ["PODIUM_CONFIG"]) if environ.get("PODIUM_CONFIG") else None)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from exc
        for key, value in data.items():
            if key not in Settings.__dataclass_fields__ or key == "extra":
                raise SettingsError(f"{path}: unknown setting {key!r}")
            values[key] = _convert(key, value, str(path))
    for name in Settings.__dataclass_fields__:
        env = "PODIUM_" + name.upper()
        if name != "extra" and env in environ:
            values[name] = _convert(name, environ[env], env)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _convert(name, value, "--" + name.replace("_", "-"))
    settings = replace(Settings(), **values)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if not 0 <= settings.port <= 65535:
        raise SettingsError(f"port must be 0–65535, got {settings.port}")
    if settings.redis_cluster:
        check_cluster_url(settings.redis_url)
    if settings.history_size < 10:
        raise SettingsError("history_size must be at least 10")
    if settings.max_frame_bytes < 1024:
        raise SettingsError("max_frame_bytes must be at least 1024")
    if not settings.key_prefix or any(c in settings.key_prefix for c in "{}: "):
        raise SettingsError("key_prefix must be non-empty, without braces, colons or spaces")
    if settings.jwt_secret and len(settings.jwt_secret) < 32:
        raise SettingsError("jwt_secret must be at least 32 characters")
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError("log_level must be DEBUG, INFO, WARNING or ERROR")
    for url in settings.ice_servers:
        if not valid_ice_url(url):
            raise SettingsError(f"ice_servers: {url!r} is not a stun:, turn: or turns: URL")
    if not 60 <= settings.turn_ttl <= 86_400:
        raise SettingsError("turn_ttl must be 60–86400 seconds")
    if not 1024 <= settings.max_sdp_bytes <= 60 * 1024:
        raise SettingsError("max_sdp_bytes must be 1024–61440 (an SDP travels in one frame)")
    if settings.stream_max_listeners < 0 or settings.stream_max_channels < 0:
        raise SettingsError("stream_max_listeners and stream_max_channels must not be negative")
    if not 1.0 <= settings.stream_media_timeout <= 60.0:
        raise SettingsError("stream_media_timeout must be 1–60 seconds")
    _check_webhooks(settings)
    if not 1.0 <= settings.series_period <= 3600.0:
        raise SettingsError("series_period must be 1–3600 seconds")


def check_cluster_url(url: str) -> None:
    """Raises unless ``url`` can name a Redis Cluster node.

    A cluster is reached over TCP: the embedded store (no URL) and unix sockets are single servers.

    Raises:
        SettingsError: it cannot.
    """
    if not url.startswith(("redis://", "rediss://")):
        raise SettingsError(
            "redis_cluster needs a redis:// or rediss:// redis_url naming one of the cluster's nodes"
        )


def _check_webhooks(settings: Settings) -> None:
    # The secret is never put in a message: a refusal names the setting only.
    try:
        targets_of(settings.webhook_urls)
    except InvalidTarget as exc:
        raise SettingsError(f"webhook_urls: {exc}") from None
    if settings.webhook_urls and len(settings.webhook_secret) < 32:
        raise SettingsError(
            "webhook_secret must be at least 32 characters when webhook_urls is set"
        )
    if not 1 <= settings.webhook_attempts <= 50:
        raise SettingsError("webhook_attempts must be 1–50")
    if not 0.01 <= settings.webhook_backoff <= 3600.0:
        raise SettingsError("webhook_backoff must be 0.01–3600 seconds")
    if not settings.webhook_backoff <= settings.webhook_backoff_cap <= 86_400.0:
        raise SettingsError("webhook_backoff_cap must be webhook_backoff–86400 seconds")
    if not 0.1 <= settings.webhook_timeout <= 120.0:
        raise SettingsError("webhook_timeout must be 0.1–120 seconds")
