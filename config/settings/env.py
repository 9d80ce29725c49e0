"""Reading configuration from environment variables, with safe development defaults."""
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("EVENTSHOP_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_required(name: str) -> str:
    """A variable production cannot start without: one error naming it, not a KeyError."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"Set the environment variable {name}: production settings require it.")
    return value


def secrets_refuse_weak(secrets: dict[str, str]) -> None:
    """Refuse a development default (they all start `dev-only-`) and one value serving as two secrets."""
    for name, value in secrets.items():
        if value.startswith("dev-only-"):
            raise ImproperlyConfigured(f"{name} is the development default: set a secret of your own.")
    seen: dict[str, str] = {}
    for name, value in secrets.items():
        if value in seen:
            raise ImproperlyConfigured(f"{name} has the same value as {seen[value]}: give each secret its own.")
        seen[value] = name


def env_throttle_rate(name: str, default: str) -> str | None:
    """A DRF throttle rate such as `10/min` (per s, min, hour or day), or `off`: None, no limit."""
    value = os.environ.get(name, default).strip().lower()
    if value == "off":
        return None
    count, _, period = value.partition("/")
    if not count.isdigit() or period[:1] not in {"s", "m", "h", "d"}:
        raise ImproperlyConfigured(f"{name}={value!r}: give a rate such as 10/min (per s, min, hour or day), or off.")
    return value


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def database_from_url(url: str) -> dict:
    """Turn `sqlite:///path` or `postgres://user:pass@host:port/name` into a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        # sqlite:///var/x.sqlite3 is relative to the project; sqlite:////abs/x.sqlite3 is absolute.
        path = path[1:]
        full_path = Path(path) if Path(path).is_absolute() else BASE_DIR / path
        # A fresh clone has no var/: SQLite creates the file, not its folder.
        full_path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(full_path),
            # Several processes share the demo files: wait for a lock instead of failing at once.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    if parts.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or "postgres"),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "127.0.0.1",
            "PORT": str(parts.port or 5432),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ValueError(f"Unsupported database URL scheme {parts.scheme!r} in {url!r}")
