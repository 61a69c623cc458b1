"""Typed settings, read once from ``IMGSTREAM_*`` environment variables.

``IMGSTREAM_ENV`` decides what unset settings mean. ``embedded`` (the default): the
embedded stack on loopback (``imgstream stack up``), with its static credentials.
``production``: unset endpoints are AWS's own, credentials come from the AWS credential
chain, and what only an operator can know (broker, database, buckets, CDN distribution,
API keys) must be set: :meth:`Settings.production_problems` lists what is missing and
the worker refuses to start until it is empty.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path(os.environ.get("IMGSTREAM_HOME") or Path.cwd() / ".imgstream").absolute()


class Settings(BaseSettings):
    # Environment variables win over <home>/stack.env, where `stack up` writes the
    # endpoints it had to choose itself (a private database port).
    model_config = SettingsConfigDict(
        env_prefix="IMGSTREAM_", extra="ignore", env_file=_default_home() / "stack.env"
    )

    # embedded | production: what unset settings mean (module docstring).
    env: Literal["embedded", "production"] = "embedded"

    # Where the embedded stack keeps data, logs and pid files.
    home: Path = Field(default_factory=_default_home)

    # Kafka / faust
    kafka_bootstrap: str = "127.0.0.1:19092"
    app_id: str = "imgstream"
    topic_prefix: str = ""
    topic_partitions: int = Field(default=4, ge=1)
    store: str = "memory://"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=16066, ge=1, le=65535)
    # How long a consumer's fetch may wait at the broker: the embedded broker holds a
    # waiting fetch to its end, so this bounds each hop's latency; shorter waits cost idle
    # CPU (docs/decisions/0004-fetch-wait.md).
    fetch_max_wait_ms: int = Field(default=150, ge=10, le=1500)
    broker_session_timeout: float = 10.0
    # How long a worker giving up partitions waits for its events in flight before it
    # rejoins the group anyway (they are then not committed: the next owner redoes them).
    rebalance_wait_seconds: float = Field(default=60.0, gt=0)
    # One record per producer batch: tansu answers ListOffsets(latest) wrongly for
    # multi-record batches, which truncates table recovery
    # (docs/decisions/0006-producer-batch-size-on-tansu.md).
    producer_max_batch_size: int = 1

    # Object store
    # Unset in production: AWS S3 and the credential chain (embedded: SeaweedFS's keys).
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    originals_bucket: str = "imgstream-originals"
    enhanced_bucket: str = "imgstream-enhanced"
    # In-process cache of immutable objects (originals, intermediates) a worker just
    # wrote or read, so the next stage of the same photo does not download them again.
    object_cache_bytes: int = Field(default=128 * 1024 * 1024, ge=0)
    # Enhanced pixels waiting in the process for finalize (streams/handoff.py).
    handoff_bytes: int = Field(default=192 * 1024 * 1024, ge=0)

    # CloudFront (moto server in the embedded stack; unset in production: AWS's).
    cloudfront_endpoint: str | None = None
    cdn_domain: str = "cdn.imgstream.local"
    # The distribution to invalidate; required in production (workers never create one).
    # Embedded: unset, the stack's own is found or created on the moto server.
    cloudfront_distribution_id: str | None = None
    # Paths per CreateInvalidation request (CloudFront allows 3000 in progress).
    invalidation_max_paths: int = Field(default=1000, ge=1, le=3000)
    # How long the first pending path waits for others before its batch is sent.
    invalidation_window_seconds: float = Field(default=5.0, ge=0.1)

    # Amazon Bedrock runtime. The embedded stack runs the project's emulator
    # (infra/bedrock_emulator.py) here; unset in production: Bedrock in bedrock_region.
    bedrock_endpoint: str | None = None
    bedrock_region: str = "us-east-1"
    # Credentials for request signing; unset, boto3's default chain is used (production).
    # With an endpoint set and nothing in the environment, placeholders sign for the emulator.
    bedrock_access_key: str | None = None
    bedrock_secret_key: str | None = None
    bedrock_timeout_seconds: float = Field(default=60.0, gt=0)
    # Attempts per call for retryable errors (throttling, 5xx, model timeouts).
    bedrock_max_attempts: int = Field(default=8, ge=1)
    bedrock_backoff_base_seconds: float = Field(default=0.25, ge=0)
    bedrock_backoff_max_seconds: float = Field(default=8.0, ge=0)
    # Bucket of paid model results keyed by (input hash, model, parameters).
    ai_cache_bucket: str = "imgstream-ai-cache"
    # False: every AI step runs its local fallback (reason ai_disabled); nothing is paid.
    ai_enabled: bool = True

    # Daily AI budget (budget_gate). The day is the calendar day in budget_timezone.
    budget_daily_cap_usd: float = Field(default=25.0, ge=0)
    # Optional caps per operation within the day, e.g. {"background": 10.0}.
    budget_operation_caps_usd: dict[str, float] = Field(default_factory=dict)
    budget_timezone: str = "UTC"
    # How often open reservations are compared with ai_usage_logs (a reservation open at
    # two checks whose spend is recorded there is settled from that record).
    budget_hold_check_seconds: float = Field(default=60.0, gt=0)

    # Bedrock emulator faults (embedded stack; also settable at run time through its
    # admin endpoint). Rates are probabilities per call.
    emulator_throttle_rate: float = Field(default=0.0, ge=0, le=1)
    emulator_error_rate: float = Field(default=0.0, ge=0, le=1)
    emulator_timeout_rate: float = Field(default=0.0, ge=0, le=1)
    emulator_filter_rate: float = Field(default=0.0, ge=0, le=1)
    emulator_latency_ms: float = Field(default=0.0, ge=0)
    emulator_latency_p95_ms: float = Field(default=0.0, ge=0)
    emulator_seed: int = 7

    # MySQL / MariaDB
    db_host: str = "127.0.0.1"
    db_port: int = 3306
    db_user: str = "root"
    db_password: str = ""
    db_name: str = "imgstream"
    db_pool_size: int = Field(default=5, ge=1)
    # Longest wait for one answer of the database (a hung server fails as transient).
    db_read_timeout_seconds: float = Field(default=90.0, gt=0)
    # Private mariadbd started by the stack when db_host:db_port does not answer.
    private_db_port: int = 13306

    # Ingest limits
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_pixels: int = Field(default=50_000_000, ge=1)
    max_side: int = Field(default=12_000, ge=1)
    min_side: int = Field(default=32, ge=1)
    # Comma-separated API keys. Uploader keys may upload; admin keys may also change budget
    # caps and read /api/stats/*. With neither set the API is open (embedded only).
    api_keys: str = ""
    admin_keys: str = ""
    # Per key (or per client address without one): sustained uploads per second and the
    # burst allowed above it; past them uploads get 429 with Retry-After (0 = no limit).
    upload_rate_per_second: float = Field(default=20.0, ge=0)
    upload_burst: int = Field(default=120, ge=1)
    # Highest daily or per-operation cap an operator may set over the API, in USD.
    budget_max_cap_usd: float = Field(default=1000.0, gt=0)
    # Key of the MAC that makes budget approvals unforgeable (streams/trust.py). The
    # embedded default is public; production must set its own.
    signing_key: str = "imgstream-embedded-signing-key"
    # /api/health reports an agent stalled when its topic has events waiting and nothing
    # was committed for this long.
    stall_seconds: float = Field(default=120.0, gt=0)
    # Photos of one batch on their way at once: a cancel stops all the others.
    batch_window: int = Field(default=8, ge=1, le=1000)
    # How often a worker lists the broker's topics to notice a broker that came back
    # without them (streams/recovery.py); 0 turns the watch off.
    broker_watch_seconds: float = Field(default=2.0, ge=0)
    # faust's own /router/ and /table/ views show raw reservations and ledgers: off unless
    # an operator turns them on for debugging.
    faust_views: bool = False

    # Quality assessment
    profile: str = "default"
    # Extra folder searched first for <profile>.toml (operators' own profiles).
    profiles_dir: Path | None = None
    # Threads for image work (decode, metrics, BRISQUE); OpenCV and numpy release the GIL.
    image_threads: int = Field(default=2, ge=1, le=64)
    # OpenCV's own threads per call. The image threads already run one photo each, so
    # more only adds wake-ups and oversubscribed cores (0 = OpenCV's default, all cores).
    opencv_threads: int = Field(default=1, ge=0, le=64)
    # CPUs this worker runs on, e.g. "0" or "0-1,4" (empty: wherever the OS puts it), to
    # keep workers off cores reserved for something else. Not a speed-up: a pinned worker
    # whose partitions hold less work leaves its core idle (docs/benchmarks.md).
    cpu_set: str = ""

    # Validate every emitted event against its JSON Schema before sending.
    validate_events: bool = True

    @field_validator("s3_endpoint", "cloudfront_endpoint", "bedrock_endpoint",
                     "s3_access_key", "s3_secret_key", "cloudfront_distribution_id")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if isinstance(value, str) else value

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        if self.env == "embedded":
            for name, value in EMBEDDED_DEFAULTS.items():
                if name not in self.model_fields_set:
                    setattr(self, name, value)
        return self

    def production_problems(self) -> list[str]:
        """What a production worker lacks, one line per setting (empty: nothing)."""
        if self.env != "production":
            return []
        given = self.model_fields_set
        problems = [f"IMGSTREAM_{name.upper()}: {why}"
                    for name, why in PRODUCTION_REQUIRED.items() if name not in given]
        if "cloudfront_distribution_id" in given and not self.cloudfront_distribution_id:
            problems.append("IMGSTREAM_CLOUDFRONT_DISTRIBUTION_ID: is empty")
        if "api_keys" in given and not self.api_key_set:
            problems.append("IMGSTREAM_API_KEYS: is empty (the API would be open)")
        if "admin_keys" in given and not self.admin_key_set:
            problems.append("IMGSTREAM_ADMIN_KEYS: is empty")
        return problems

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("must be host:port")
        return value

    @field_validator("cpu_set")
    @classmethod
    def _cpu_set_parses(cls, value: str) -> str:
        parse_cpu_set(value)
        return value

    @property
    def cpus(self) -> set[int]:
        return parse_cpu_set(self.cpu_set)

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())

    @property
    def admin_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.admin_keys.split(",") if k.strip())

    def topic_name(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        host, _, port = self.kafka_bootstrap.rpartition(":")
        return host, int(port)

    @property
    def s3_port(self) -> int | None:
        return urlsplit(self.s3_endpoint).port if self.s3_endpoint else None

    @property
    def cloudfront_port(self) -> int | None:
        return urlsplit(self.cloudfront_endpoint).port if self.cloudfront_endpoint else None

    @property
    def bedrock_port(self) -> int | None:
        return urlsplit(self.bedrock_endpoint).port if self.bedrock_endpoint else None

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"


#: What unset settings mean on the embedded stack (loopback, SeaweedFS's static keys).
EMBEDDED_DEFAULTS: dict[str, str] = {
    "s3_endpoint": "http://127.0.0.1:18333",
    "s3_access_key": "imgstream",
    "s3_secret_key": "imgstream-secret",
    "cloudfront_endpoint": "http://127.0.0.1:15001",
    "bedrock_endpoint": "http://127.0.0.1:15002",
}

#: Settings a production worker must be given, and why.
PRODUCTION_REQUIRED: dict[str, str] = {
    "kafka_bootstrap": "the Kafka/MSK bootstrap broker, host:port",
    "db_host": "the MySQL/RDS host",
    "db_user": "the MySQL/RDS user",
    "db_password": "the MySQL/RDS password",
    "originals_bucket": "the S3 bucket for uploaded originals",
    "enhanced_bucket": "the S3 bucket for published renditions (the CDN's origin)",
    "ai_cache_bucket": "the S3 bucket for paid AI results",
    "cdn_domain": "the CloudFront domain published URLs use",
    "cloudfront_distribution_id": "the CloudFront distribution to invalidate",
    "api_keys": "uploader API keys (comma-separated): the HTTP API is never open in "
                "production",
    "admin_keys": "admin API keys (comma-separated): budget caps and /api/stats/*",
    "signing_key": "the secret that signs budget approvals (the same on every worker)",
}


def parse_cpu_set(text: str) -> set[int]:
    """CPU numbers of a list like "0-1,4" (the taskset/cpuset syntax); empty: none."""
    cpus: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, dash, last = part.partition("-")
        if (not first.isdigit() or (dash and not last.isdigit())
                or int(last or first) < int(first)):
            raise ValueError(f"not a CPU list: {text!r} (expected e.g. 0 or 0-1,4)")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read from the environment on first use)."""
    return Settings()


def reload_settings() -> Settings:
    """Read the environment (and stack.env) again, e.g. after ``stack up`` chose a port."""
    get_settings.cache_clear()
    return get_settings()
