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
    database_pre_ping: bool = Field(
        default=False, description="ping each PostgreSQL connection at check-out (3 round trips)"
    )
    database_pool_recycle_seconds: int = Field(
        default=1800, ge=1, description="replace pooled connections older than this"
    )
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

    # Payments. A provider whose api base is unset runs as an in-process sandbox with generated
    # test-only keys; production sets the base URL and the merchant's keys (PEM text).
    payment_notify_base_url: str | None = Field(
        default=None, description="public base of provider callbacks; None = public_url"
    )
    payment_expiry_seconds: int = Field(default=900, ge=60, description="unpaid order lifetime")
    payment_query_after_seconds: float = Field(
        default=10.0, gt=0, description="actively query a payment still pending after this"
    )
    max_preset_fen: int = Field(default=200_000, gt=0, description="pay-at-pump preset cap")
    refund_approval_fen: int = Field(
        default=50_000, ge=0, description="refunds above this need a manager's approval"
    )
    pump_authorise_ttl_seconds: int = Field(
        default=180, gt=0, description="a paid pay-at-pump authorisation lasts this long"
    )
    sandbox_resend_scale: float = Field(
        default=1.0, gt=0, description="sandbox notification resend delays are multiplied by this"
    )
    wechatpay_api_base: str | None = Field(default=None, description="None = in-process sandbox")
    wechatpay_mchid: str = "1900000001"
    wechatpay_private_key: SecretStr | None = None
    wechatpay_cert_serial: str | None = None
    wechatpay_apiv3_key: SecretStr | None = None
    wechatpay_platform_public_key: str | None = Field(
        default=None, description="PEM of WeChat Pay's public key (public-key mode)"
    )
    wechatpay_platform_key_id: str | None = Field(default=None, description="PUB_KEY_ID_...")
    alipay_gateway: str | None = Field(default=None, description="None = in-process sandbox")
    alipay_app_id: str = "2021000000000001"
    alipay_private_key: SecretStr | None = None
    alipay_public_key: str | None = Field(default=None, description="PEM of Alipay's public key")
    unionpay_gateway: str | None = Field(default=None, description="None = in-process sandbox")
    unionpay_mer_id: str = "777290058110048"
    unionpay_private_key: SecretStr | None = None
    unionpay_cert_id: str | None = None
    unionpay_root_cert: str | None = Field(
        default=None, description="PEM of the root and middle certificates that sign responses"
    )

    # E-invoices (数电票, docs/invoices.md). With `nuonuo_api_base` unset the provider is an
    # in-process Nuonuo sandbox. The default seller issues for every station without its own.
    nuonuo_api_base: str | None = Field(default=None, description="None = in-process sandbox")
    nuonuo_app_key: str = "forecourt-demo-appkey"
    nuonuo_app_secret: SecretStr | None = None
    nuonuo_access_token: SecretStr | None = Field(
        default=None, description="None = fetched with the app key and secret (client grant)"
    )
    invoice_notify_base_url: str | None = Field(
        default=None, description="public base of the provider's callbacks; None = public_url"
    )
    invoice_sandbox_delay_min_seconds: float = Field(default=0.2, ge=0)
    invoice_sandbox_delay_max_seconds: float = Field(default=2.0, ge=0)
    invoice_seller_tax_id: str = "91530100MA6K0FC01K"
    invoice_seller_name: str = "Forecourt 演示能源有限公司"
    invoice_seller_address: str = "云南省昆明市演示路1号 0871-60000000"
    invoice_seller_quota_litres: int = Field(
        default=1_000_000, ge=0, description="refined-oil quota of a seller first seen"
    )
    invoice_clerk: str = "系统"
    invoice_period_days: int = Field(default=180, ge=1, description="invoice within this")
    invoice_max_orders: int = Field(default=50, ge=1, le=200, description="orders per invoice")
    invoice_query_after_seconds: float = Field(
        default=30.0, gt=0, description="ask the provider about an invoice issuing this long"
    )
    invoice_goods: dict[str, dict[str, str]] = Field(
        default={
            "92": {"tax_code": "1070101010100000000", "short_name": "汽油", "name": "92号车用汽油"},
            "95": {"tax_code": "1070101010100000000", "short_name": "汽油", "name": "95号车用汽油"},
            "98": {"tax_code": "1070101010100000000", "short_name": "汽油", "name": "98号车用汽油"},
            "0": {"tax_code": "1070101030100000000", "short_name": "柴油", "name": "0号车用柴油"},
            "-10": {
                "tax_code": "1070101030100000000",
                "short_name": "柴油",
                "name": "-10号车用柴油",
            },
        },
        description="grade -> tax code, its short name and the goods name (provider code table)",
    )
    smtp_host: str | None = Field(default=None, description="None = invoices are not e-mailed")
    smtp_port: int = 25
    smtp_from: str = "invoices@forecourt.invalid"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False

    app_dist_dir: Path = Field(
        default=Path("web/app/dist/build/h5"), description="built H5 driver app, served at /app"
    )
    admin_dist_dir: Path = Field(
        default=Path("web/admin/dist"), description="built back-office console, served at /admin"
    )
    # Loyalty (docs/loyalty.md): growth and RFM over a rolling window, nightly re-tiering with
    # a downgrade grace period, the points mall, and the WeCom (企业微信) CRM tag sync. With
    # `wecom_api_base` unset the CRM is an in-process WeCom sandbox.
    loyalty_window_days: int = Field(default=365, ge=30, description="growth/RFM window")
    loyalty_grace_days: int = Field(default=30, ge=0, description="downgrade grace period")
    loyalty_share_daily_cap: int = Field(default=3, ge=0, description="shares counted per day")
    loyalty_retier_batch: int = Field(default=10_000, ge=100, description="members per batch")
    loyalty_pickup_days: int = Field(default=30, ge=1, description="mall pick-up deadline")
    wecom_api_base: str | None = Field(default=None, description="None = in-process sandbox")
    wecom_corpid: str = "ww-forecourt-demo"
    wecom_secret: SecretStr | None = None
    wecom_follow_userid: str = Field(
        default="forecourt-crm", description="the WeCom member whose customers drivers are"
    )
    wecom_sync_batch: int = Field(default=200, ge=1, description="tag syncs per job run")
    wecom_sync_concurrency: int = Field(default=4, ge=1, le=32, description="calls in flight")

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
