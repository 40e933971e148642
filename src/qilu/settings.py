"""Settings from the environment (`QILU_` prefix), read once per process and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QILU_", extra="ignore")

    data_dir: Path = Field(
        default=Path("qilu-data"),
        description="Folder for the embedded database, generated keys and files.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; empty means SQLite in the data folder.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#]+(/[^?#]*)?$",
        description="The address people and department systems reach Qilu at, and so the OIDC "
        "issuer (https://… behind a proxy); empty means http://host:port. Never taken from a "
        "request's Host header.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    pii_key: SecretStr | None = Field(
        default=None, description="SM4 key for personal identifiers, 32 hex characters."
    )
    pii_key_id: int = Field(
        default=0,
        ge=0,
        le=255,
        description="The id of QILU_PII_KEY, written into every ciphertext.",
    )
    pii_earlier_keys: SecretStr | None = Field(
        default=None,
        description="During a key rotation: the SM4 keys before QILU_PII_KEY, as ID:HEX pairs "
        "separated by commas, so what they encrypted still reads until `qilu keys rotate-pii` "
        "has rewritten it.",
    )
    index_key: SecretStr | None = Field(
        default=None, description="HMAC-SM3 key for blind indexes, 64 hex characters."
    )
    index_earlier_keys: SecretStr | None = Field(
        default=None,
        description="During an index-key rotation: the HMAC-SM3 keys before QILU_INDEX_KEY, hex, "
        "separated by commas, so look-ups find what they indexed until `qilu keys rotate-pii` "
        "has rebuilt it. Needs QILU_SUBJECT_KEY.",
    )
    subject_key: SecretStr | None = Field(
        default=None,
        description="HMAC-SM3 key the pairwise OIDC sub and sid derive from, 64 hex characters; "
        "empty: QILU_INDEX_KEY. Set it to the index key's value before that key ever changes.",
    )
    cookie_secure: bool = Field(
        default=False, description="Send cookies over HTTPS only (set it behind a TLS proxy)."
    )
    security_profile: Literal["standard", "dengbao3"] = Field(
        default="standard",
        description="dengbao3: 等保 level 3 (30-minute locks, complex passwords, 90-day age).",
    )
    db_pool_size: int = Field(
        default=20,
        ge=1,
        le=200,
        description="PostgreSQL connections each server process keeps open (one per request in "
        "flight; keep workers × this under the server's max_connections).",
    )
    api_rate_per_second: int = Field(
        default=200,
        ge=1,
        description="Requests per second a department system may make of the data APIs, unless "
        "its registration says otherwise.",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where rate-limit counters live: memory:// (per process) or redis://host:port "
        "(shared by all processes).",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest body of a form or JSON request."
    )
    max_upload_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest file an applicant uploads."
    )
    max_load_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="Largest data file a steward loads in the browser (larger: `qilu data load`).",
    )
    max_api_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest push to the data API."
    )
    outbox_interval: float = Field(
        default=1.0,
        ge=0,
        description="Seconds between a web process's sweeps of the outbox (0: none, when "
        "`qilu outbox run` workers do it).",
    )
    monitor_hj212_port: int = Field(
        default=9212, ge=0, le=65535, description="TCP port for HJ 212 data loggers (0: off)."
    )
    monitor_jt808_port: int = Field(
        default=6808, ge=0, le=65535, description="TCP port for JT/T 808 terminals (0: off)."
    )
    monitor_sl651_port: int = Field(
        default=9651, ge=0, le=65535, description="TCP port for SL 651 stations (0: off)."
    )
    monitor_mqtt_broker: str = Field(
        default="",
        pattern=r"^([A-Za-z0-9.-]+:\d{1,5})?$",
        description="host:port of the MQTT broker sensors publish to (qilu/telemetry/<code>); "
        "empty: MQTT off.",
    )
    monitor_mqtt_client_id: str = Field(
        default="qilu-monitor",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="The listener's MQTT client id: the broker keeps its session, so messages "
        "not yet stored come again after a restart; each listener needs its own.",
    )
    monitor_events_seconds: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="How long one server-sent events stream of the alarm wall lasts before "
        "the browser opens the next (bounds what a forgotten tab holds).",
    )
    monitor_retention_days: int = Field(
        default=400,
        ge=1,
        le=36_500,
        description="Days raw frames and readings are kept after they were received (on "
        "PostgreSQL whole day partitions are dropped).",
    )
    monitor_bus: str = Field(
        default="",
        pattern=r"^(nats://[A-Za-z0-9.-]+:\d{1,5})?$",
        description="Between listeners and writers: empty, in the listener's process; "
        "nats://host:port, NATS JetStream, writers run as `qilu monitor work`.",
    )
    monitor_stream: str = Field(
        default="QILU_MONITOR",
        pattern=r"^[A-Z][A-Z0-9_]{0,31}$",
        description="The JetStream stream's name (its subjects: the name in lower case).",
    )
    monitor_stream_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 30,
        description="How long the stream keeps a frame no writer has stored (a writer down "
        "longer loses what is older): size it to the longest outage writers may have.",
    )
    monitor_partitions: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Partitions of the stream: a source's frames all go to one, each "
        "partition is stored by one writer. Fixed once frames have flowed.",
    )
    upstream_issuer: str | None = Field(
        default=None,
        description="An upstream OIDC provider people may sign in through (the national "
        "platform's 统一身份认证); empty: none.",
    )
    upstream_client_id: str | None = Field(default=None, description="Qilu's client id there.")
    upstream_client_secret: SecretStr | None = Field(default=None, description="Its secret.")
    upstream_name: str = Field(
        default="国家政务服务平台", description="The upstream's name on the sign-in page."
    )
    archive_fonds: str = Field(
        default="Q001",
        pattern=r"^[0-9A-Z]{1,10}$",
        description="全宗号 of the platform's records, as the archives assigned it (DA/T 13).",
    )
    archive_scanner: str | None = Field(
        default=None,
        description="A virus scanner run on each package at its 四性检测, given the folder "
        "(e.g. `clamscan -r --no-summary`); exit 0 is clean, 1 infected. Empty: the check "
        "says no scan was made.",
    )
    national_url: str | None = Field(
        default=None,
        description="Where 办件, 好差评 and e-licence reports go (the 国家政务服务平台's receiving "
        "address, or `qilu national receiver`'s http://127.0.0.1:8300/reports); empty: reports are "
        "kept, not sent, until it is set (then `qilu national resend`).",
    )
    sms_gateway_url: str | None = Field(
        default=None,
        description="The SMS platform's HTTP endpoint (JSON phone and text); empty: messages are "
        "written to the log (development and the demo only).",
    )
    sms_gateway_token: SecretStr | None = Field(
        default=None, description="Bearer token for the SMS platform."
    )
    cjk_font: Path = Field(
        default=Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),
        description="A Chinese OpenType font (.ttc/.otf/.ttf) the PDF documents are written in "
        "(Debian: fonts-noto-cjk).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token Prometheus sends to /metrics; empty: /metrics is closed.",
    )
    draft_days: int = Field(
        default=90, ge=1, description="A draft application untouched this many days is deleted."
    )
    load_report_days: int = Field(
        default=180,
        ge=1,
        description="Days a data load's rejected rows and warnings are kept (its counts stay).",
    )
    audit_archive_days: int = Field(
        default=183,
        ge=183,
        description="Audit entries older than this are written to the off-line archive by "
        "`qilu audit archive` (never deleted; 等保 level 3 keeps at least six months).",
    )
    demo_scale: int = Field(default=20_000, ge=100, description="Residents `qilu demo` creates.")
    demo_seed: int = 2020

    @property
    def issuer(self) -> str:
        """The OIDC issuer: `public_url` without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def is_embedded(self) -> bool:
        """True when the store is the SQLite file inside the data folder."""
        return self.database_url is None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qilu.db').resolve()}"
