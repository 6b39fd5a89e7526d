"""Settings: defaults < config.toml < environment < command-line flags.

One frozen object for the whole app. Every value remembers where it came from,
so a bad one is reported as one line naming the setting and its source. The API
key never appears in a repr, a log line or `chrysopedia config` output.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from platformdirs import user_config_path, user_data_path

APP_NAME = "chrysopedia"


class ConfigError(Exception):
    """A bad setting: which one, where it came from and what is wrong."""

    def __init__(self, setting: str, source: str, message: str) -> None:
        self.setting = setting
        self.source = source
        self.message = message
        super().__init__(f"config error: {setting} (from {source}): {message}")


def default_config_file() -> Path:
    return user_config_path(APP_NAME) / "config.toml"


def default_data_dir() -> Path:
    return user_data_path(APP_NAME)


def default_user_id() -> str:
    """The OS user name (what `whoami` says), or "unknown" where there is none."""
    import getpass

    try:
        return getpass.getuser()[:200] or "unknown"
    except (OSError, KeyError, ImportError):
        return "unknown"


def default_database_url() -> str:
    return f"sqlite+aiosqlite:///{default_data_dir() / 'chrysopedia.db'}"


@dataclass(frozen=True)
class Settings:
    database_url: str = ""
    redis_url: str | None = None
    llm_api_url: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    llm_model: str = "gpt-4o-mini"
    llm_fallback_url: str | None = None
    llm_fallback_model: str | None = None
    # Seconds to wait for a TCP connection to a model server before falling back.
    llm_connect_timeout: float = 0.4
    # Seconds to wait for the first token before treating the model as stalled.
    llm_first_token_timeout: float = 30.0
    # Seconds allowed between two chunks once streaming has started.
    llm_read_timeout: float = 60.0
    # Seconds to wait for a new PostgreSQL connection (start-up included) before giving up.
    database_connect_timeout: float = 10.0
    # PostgreSQL connections each process keeps (pool_size) and may open on top for a
    # moment (max_overflow): one terminal does one thing at a time, so 1 + 1 lets fifty
    # terminals share a server's default max_connections of 100 (README, "teams").
    database_pool_size: int = 1
    database_max_overflow: int = 1
    # Who asks, recorded in each usage row and transcript message (default: the OS user).
    user_id: str = ""
    # Redis key prefix for conversation memory (tests use their own).
    redis_key_prefix: str = "chrysopedia:chat:"
    theme: str | None = None
    # Ask the model even when search finds nothing in the KB about the question.
    answer_without_sources: bool = False
    # How much `chrysopedia import` lowers its own CPU priority (nice, 0-19): an import is a
    # batch job, and the terminals or browser sessions on the same machine keep answering.
    import_nice: int = 10
    # An OpenAI-compatible /v1/embeddings model for section vectors instead of the local one,
    # and its server (default: the chat model's URL).
    embed_model: str | None = None
    embed_url: str | None = None
    keymap: Mapping[str, str] = field(default_factory=dict)
    data_dir: Path = field(default_factory=default_data_dir)
    # Where local video files named by the knowledge base live (default: data_dir/media).
    media_dir: Path | None = None
    config_file: Path | None = None
    # Where each value came from, for error messages and `chrysopedia config`.
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(
                self, "database_url", f"sqlite+aiosqlite:///{self.data_dir / 'chrysopedia.db'}"
            )
        if self.media_dir is None:
            object.__setattr__(self, "media_dir", self.data_dir / "media")
        if not self.user_id:
            object.__setattr__(self, "user_id", default_user_id())

    @property
    def model_configured(self) -> bool:
        return bool(self.llm_api_url or self.llm_api_key)

    @property
    def fallback_configured(self) -> bool:
        return bool(self.llm_fallback_url)

    def with_overrides(self, **values: Any) -> Settings:
        return replace(self, **values)

    def public_items(self) -> list[tuple[str, str, str]]:
        """(name, shown value, source) for every setting; secrets masked."""
        rows = []
        for f in fields(self):
            if f.name in ("sources", "keymap"):
                continue
            value = getattr(self, f.name)
            if f.name == "llm_api_key":
                shown = "(set)" if value else "(not set)"
            elif f.name in ("database_url", "redis_url", "llm_api_url", "llm_fallback_url",
                            "embed_url"):
                shown = redact_url(value) if value else "(not set)"
            else:
                shown = "(not set)" if value is None else str(value)
            rows.append((f.name, shown, self.sources.get(f.name, "default")))
        for action, key in sorted(self.keymap.items()):
            rows.append((f"keymap.{action}", key, self.sources.get("keymap", "config")))
        return rows


def redact_url(url: str) -> str:
    """Hide a password embedded in a URL (redis://:pw@host, postgresql://u:pw@h)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable)"
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


# PostgreSQL truncates identifiers longer than this many bytes (NAMEDATALEN - 1).
MAX_IDENTIFIER_BYTES = 63


def check_schema_name(name: str) -> str:
    """`name` if it may name a PostgreSQL schema here, else ValueError saying why.

    Letters, digits and underscores only, at most 63 bytes, not a `pg_` name: the
    name is quoted wherever it reaches SQL, and this keeps it a plain identifier
    that needs no quoting rules to read."""
    shown = repr(name) if len(name) <= 80 else repr(name[:80]) + "…"
    if not name:
        raise ValueError("the schema name is empty")
    if not all(ch == "_" or ch.isalnum() for ch in name):
        raise ValueError(
            f"schema name {shown} may hold only letters, digits and underscores"
        )
    if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"schema name {shown} is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes"
        )
    if name.lower().startswith("pg_"):
        raise ValueError(f"schema name {shown}: names starting with pg_ belong to PostgreSQL")
    return name


def schema_in_url(url: str) -> str | None:
    """The `?schema=NAME` of a database URL (checked), or None; ValueError on a bad one."""
    names = [v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True) if k == "schema"]
    if not names:
        return None
    if len(names) > 1:
        raise ValueError("?schema= is given more than once")
    return check_schema_name(names[0])


# setting name -> (environment variables in order of precedence, kind)
_ENV: dict[str, tuple[tuple[str, ...], str]] = {
    "database_url": (("CHRYSOPEDIA_DATABASE_URL",), "db_url"),
    "database_connect_timeout": (
        ("CHRYSOPEDIA_DATABASE_CONNECT_TIMEOUT", "PGCONNECT_TIMEOUT"), "seconds"
    ),
    "database_pool_size": (("CHRYSOPEDIA_DATABASE_POOL_SIZE",), "pool_size"),
    "database_max_overflow": (("CHRYSOPEDIA_DATABASE_MAX_OVERFLOW",), "overflow"),
    "redis_url": (("CHRYSOPEDIA_REDIS_URL",), "redis_url"),
    "llm_api_url": (("CHRYSOPEDIA_LLM_API_URL", "OPENAI_BASE_URL"), "http_url"),
    "llm_api_key": (("CHRYSOPEDIA_LLM_API_KEY", "OPENAI_API_KEY"), "str"),
    "llm_model": (("CHRYSOPEDIA_LLM_MODEL",), "str"),
    "llm_fallback_url": (("CHRYSOPEDIA_LLM_FALLBACK_URL",), "http_url"),
    "llm_fallback_model": (("CHRYSOPEDIA_LLM_FALLBACK_MODEL",), "str"),
    "llm_connect_timeout": (("CHRYSOPEDIA_LLM_CONNECT_TIMEOUT",), "seconds"),
    "llm_first_token_timeout": (("CHRYSOPEDIA_LLM_FIRST_TOKEN_TIMEOUT",), "seconds"),
    "llm_read_timeout": (("CHRYSOPEDIA_LLM_READ_TIMEOUT",), "seconds"),
    "redis_key_prefix": (("CHRYSOPEDIA_REDIS_KEY_PREFIX",), "str"),
    "user_id": (("CHRYSOPEDIA_USER_ID",), "user_id"),
    "theme": (("CHRYSOPEDIA_THEME",), "str"),
    "answer_without_sources": (("CHRYSOPEDIA_ANSWER_WITHOUT_SOURCES",), "bool"),
    "import_nice": (("CHRYSOPEDIA_IMPORT_NICE",), "nice"),
    "embed_model": (("CHRYSOPEDIA_EMBED_MODEL",), "str"),
    "embed_url": (("CHRYSOPEDIA_EMBED_URL",), "http_url"),
    "data_dir": (("CHRYSOPEDIA_DATA_DIR",), "path"),
    "media_dir": (("CHRYSOPEDIA_MEDIA_DIR",), "path"),
}
_FILE_KEYS = set(_ENV) | {"keymap"}


def environment_for(settings: Settings) -> dict[str, str | None]:
    """The environment that makes `load_settings` in another process give these settings.

    Each setting goes in its first variable; a variable whose setting is unset maps to
    None (remove it). The config file is named only when it exists (it still holds the
    keymap). Used by `chrysopedia serve` to start each browser session's app.
    """
    env: dict[str, str | None] = {}
    for name, (variables, _kind) in _ENV.items():
        value = getattr(settings, name)
        for var in variables:
            env[var] = None
        if value is not None:
            env[variables[0]] = str(value)
    config = settings.config_file
    env["CHRYSOPEDIA_CONFIG"] = str(config) if config is not None and Path(config).is_file() else None
    return env


def _check(name: str, kind: str, raw: Any, source: str) -> Any:
    """Validate and convert one value; raise ConfigError naming it."""
    if raw is None:
        return None
    if kind == "seconds":
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(name, source, f"expected a number of seconds, got {raw!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(name, source, f"expected a positive number of seconds, got {raw!r}")
        return value
    if kind == "nice":
        try:
            value = int(str(raw).strip()) if not isinstance(raw, bool) else None
        except ValueError:
            value = None
        if value is None or not 0 <= value <= 19:
            raise ConfigError(name, source, f"expected a whole number from 0 to 19, got {raw!r}")
        return value
    if kind in ("pool_size", "overflow"):
        least = 1 if kind == "pool_size" else 0
        try:
            value = int(str(raw).strip()) if not isinstance(raw, bool) else None
        except ValueError:
            value = None
        if value is None or not least <= value <= 1000:
            raise ConfigError(name, source, f"expected a whole number from {least} to 1000, "
                                            f"got {raw!r}")
        return value
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, source, f"expected true or false, got {raw!r}")
    if not isinstance(raw, str):
        raise ConfigError(name, source, f"expected a string, got {type(raw).__name__}")
    value = raw.strip()
    if kind == "str":
        return value or None
    if kind == "path":
        return Path(value).expanduser()
    if kind == "user_id":
        if not value:
            return None
        if len(value) > 200 or any(not ch.isprintable() for ch in value):
            raise ConfigError(name, source, "expected a printable name of at most 200 characters")
        return value
    if not value:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(name, source, f"malformed URL {redact_url(value)!r}: {exc}") from None
    if kind == "http_url":
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                name, source, f"expected an http(s):// URL, got {redact_url(value)!r}"
            )
    elif kind == "redis_url":
        if parts.scheme not in ("redis", "rediss", "unix") or (
            parts.scheme != "unix" and not parts.hostname
        ):
            raise ConfigError(
                name, source, f"expected a redis:// URL, got {redact_url(value)!r}"
            )
    elif kind == "db_url":
        if parts.scheme.startswith("sqlite"):
            if parts.scheme not in ("sqlite", "sqlite+aiosqlite"):
                raise ConfigError(name, source, f"unsupported SQLite driver in {value!r}")
            value = "sqlite+aiosqlite" + value[len(parts.scheme) :]
        elif parts.scheme.startswith("postgres"):
            value = "postgresql+asyncpg" + value[len(parts.scheme) :]
            try:
                schema_in_url(value)
            except ValueError as exc:
                raise ConfigError(name, source, str(exc)) from None
        else:
            raise ConfigError(
                name,
                source,
                f"expected sqlite:/// or postgresql:// URL, got {redact_url(value)!r}",
            )
    return value


def _read_file(path: Path, source: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file", source, f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config file", source, f"cannot read {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config file", source, f"{path} is not valid TOML: {exc}") from None
    for key in data:
        if key not in _FILE_KEYS:
            raise ConfigError(key, f"{path}", "unknown setting")
    keymap = data.get("keymap", {})
    if not isinstance(keymap, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in keymap.items()
    ):
        raise ConfigError("keymap", f"{path}", "expected a table of action = \"keys\"")
    return data


def load_settings(
    *,
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from every layer. Raises ConfigError on any bad value."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    # The config file: --config, then CHRYSOPEDIA_CONFIG, then the default location.
    if config_file is not None:
        path, required, source = Path(config_file).expanduser(), True, "--config"
    elif env.get("CHRYSOPEDIA_CONFIG"):
        path, required, source = Path(env["CHRYSOPEDIA_CONFIG"]).expanduser(), True, "CHRYSOPEDIA_CONFIG"
    else:
        path, required, source = default_config_file(), False, "default location"
    if required or path.exists():
        data = _read_file(path, source)
        for name, raw in data.items():
            if name == "keymap":
                values["keymap"] = dict(raw)
            else:
                values[name] = _check(name, _ENV[name][1], raw, str(path))
            sources[name] = str(path)

    # Environment: the first variable of each list wins over its aliases.
    for name, (variables, kind) in _ENV.items():
        for var in variables:
            raw = env.get(var)
            if raw is not None and raw.strip():
                values[name] = _check(name, kind, raw, f"${var}")
                sources[name] = f"${var}"
                break

    flag_names = {"db": "database_url", "redis": "redis_url"}
    for flag, raw in flags.items():
        name = flag_names.get(flag, flag)
        if name not in _ENV:
            continue
        values[name] = _check(name, _ENV[name][1], raw, f"--{flag.replace('_', '-')}")
        sources[name] = f"--{flag.replace('_', '-')}"

    values["sources"] = sources
    values["config_file"] = path
    return Settings(**values)
