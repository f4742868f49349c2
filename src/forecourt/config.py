"""Settings read from the environment (prefix FORECOURT_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

VAR_DIR = Path("var")


class Settings(BaseSettings):
    """Every runtime knob; only settings change between the demo and production."""

    model_config = SettingsConfigDict(env_prefix="FORECOURT_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str = f"sqlite+aiosqlite:///{VAR_DIR}/forecourt.db"
    database_replica_url: str | None = None
    database_pool_size: int = 10
    redis_url: str | None = None
    task_broker_url: str | None = Field(
        default=None,
        description="redis://… or amqp://…; empty = in-process broker (embedded default)",
    )
    spatial_backend: Literal["auto", "postgis", "memory"] = "auto"
    spatial_refresh_seconds: float = 2.0

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    log_json: bool = True
    access_log: bool = True

    # Secrets: never in the repository; the demo generates them under ./var/.
    jwt_secret: SecretStr | None = None
    data_key: SecretStr | None = Field(default=None, description="base64 32-byte AES key for PII")
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600

    wechat_appid: str = "wx-forecourt-demo"
    wechat_secret: SecretStr | None = None
    wechat_api_base: str | None = Field(default=None, description="None = in-process sandbox")
    sms_api_base: str | None = Field(default=None, description="None = in-process sandbox")
    sms_api_key: SecretStr | None = None
    sms_code_ttl_seconds: int = 300
    sms_per_phone_per_hour: int = 5
    sms_per_ip_per_hour: int = 20
    login_per_phone_per_hour: int = 10
    login_per_ip_per_hour: int = 60
    show_sandbox_sms_code: bool = Field(
        default=False, description="demo only: return the sandbox SMS code in the response"
    )

    outbox_poll_seconds: float = 0.5
    run_dispatcher: bool = True
    run_scheduler: bool = True

    @property
    def is_sqlite(self) -> bool:
        """True when the primary database is SQLite."""
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process (cached)."""
    return Settings()
