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

    mqtt_url: str | None = Field(
        default=None,
        description="mqtt://host:1883 or mqtts://host:8883; None = in-process broker (embedded)",
    )
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_client_prefix: str = Field(
        default="forecourt", description="client ids are <prefix>-server etc.; unique per node"
    )
    mqtt_shared_group: str | None = Field(
        default=None, description="several API nodes: subscribe via $share/<group>/..."
    )
    mqtt_session_expiry_seconds: int = 604_800
    mqtt_keepalive_seconds: int = 30
    run_pump_link: bool = True
    pump_command_resend_seconds: float = 10.0
    pump_lock_ttl_seconds: int = 300
    pump_progress_persist_seconds: float = Field(
        default=2.0,
        gt=0,
        description="store a fuelling point's in-memory progress at most this often",
    )

    run_simulator: bool = Field(
        default=False, description="run the pump/speaker simulator in-process (`forecourt demo`)"
    )
    simulator_speed: float = Field(default=1.0, gt=0, description="simulator time factor")
    simulator_max_stations: int = Field(default=50, ge=1, description="stations the demo runs")
    run_speaker: bool = Field(default=True, description="send speaker announcements")
    speaker_retry_seconds: float = Field(
        default=3.0, gt=0, description="first resend of an unacknowledged announcement"
    )
    speaker_retry_max_seconds: float = Field(default=30.0, gt=0, description="backoff cap")
    speaker_max_attempts: int = Field(default=10, ge=1, description="publications before giving up")
    speaker_valid_seconds: int = Field(
        default=120, ge=1, description="an announcement is not played after this"
    )
    speaker_poll_seconds: float = Field(default=0.5, gt=0, description="due-announcement poll")

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
