"""Settings read from the environment, the one place that knows the variable names.

FC passes configuration as environment variables (s.yaml `environmentVariables`); the local runtime sets
the same names. Secrets are held as `SecretStr` so that they never show in a repr, a log line or an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, ValidationError

OnSuccess = Literal["deploy", "import", "none"]


class ConfigError(ValueError):
    """A setting in the environment is malformed; the message names the variable, never its secret value."""


class RunDefaults(BaseModel):
    """What a run does when its upload says nothing else (per-upload settings override these)."""

    model_config = ConfigDict(frozen=True)

    model: str = "qwen3-8b"
    training_type: str = "efficient_sft"
    hyper_parameters: dict[str, Any] = Field(default_factory=dict)
    on_success: OnSuccess = "deploy"
    deploy_plan: str = "lora"
    deploy_capacity: int = 1
    deploy_spec: str | None = None
    job_retention: str = "keep-last-10"
    deployment_ttl: str | None = None


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    api_key: SecretStr | None = None
    region: Literal["cn", "intl"] = "cn"
    base_url: str | None = None
    workspace: str | None = None

    bucket: str = "bailian-flow"
    oss_endpoint: str | None = None
    oss_region: str = "cn-hangzhou"
    store: str = "oss"
    datasets_prefix: str = "datasets/"
    imports_prefix: str = "imports/"
    deployments_prefix: str = "deployments/"
    runs_prefix: str = "runs/"
    batches_prefix: str = "batches/"
    results_prefix: str = "results/"

    defaults: RunDefaults = Field(default_factory=RunDefaults)

    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    api_token: SecretStr | None = None
    # Batch inference: the webhook function's public base URL (for Bailian's finish callbacks; none = the timer
    # polls alone) and the secret its per-run callback paths are signed with.
    callback_url: str | None = None
    callback_secret: SecretStr | None = None
    # A shard is one Bailian batch: its service limits, lowered only to force multi-shard runs in tests.
    batch_shard_lines: int = Field(default=50_000, ge=1, le=50_000)
    batch_shard_bytes: int = Field(default=500 * 1024 * 1024, ge=1024, le=500 * 1024 * 1024)

    # An intent older than this is presumed abandoned (its actor died): longer than the longest function timeout.
    lease_seconds: float = Field(default=660.0, ge=0)
    # How long Bailian's lists may lag a create (undocumented, service-contract.md#C41): no intent is re-claimed
    # sooner, whatever the lease says.
    list_lag_seconds: float = Field(default=60.0, ge=0)
    # A stage waiting for its OSS event longer than this is presumed to have lost it; the timer re-announces it.
    redrive_after_seconds: float = Field(default=180.0, ge=0)
    # Every actor that wrote before this moment is known dead: its intents need not wait out their lease. Only a
    # runtime that knows it can say so: `bailian-flow dev` sets it to its own start on a data directory it holds
    # alone (a stack killed and restarted), FC never (an instance's death is invisible to the next one).
    actors_dead_before: AwareDatetime | None = None

    # The account's quotas (bailian-api.md section 10): runs beyond them wait in line instead of failing.
    quota_fine_tune_jobs: int = Field(default=20, ge=1)
    quota_files: int = Field(default=100, ge=1)
    quota_file_bytes: int = Field(default=5 << 30, ge=1)
    quota_batches: int = Field(default=2, ge=1)
    # Fine-tunes training at once: QUEUING means "only one training runs at a time", and a create meanwhile may
    # answer 429 "Too many fine-tune job in running" (service-contract.md#C8).
    quota_training_slots: int = Field(default=1, ge=1)

    # The timer's list page size (default: each endpoint's largest) and how many runs one tick may load (default:
    # as many as its time allows); both exist to exercise paging and rotation with few runs.
    timer_page_size: int | None = Field(default=None, ge=1, le=100)
    timer_visit_budget: int | None = Field(default=None, ge=1)
    # How often the timer audits one slice of Bailian's lists for what terminal runs still own (seconds).
    audit_every_seconds: float = Field(default=300.0, ge=0)

    access_key_id: str | None = None
    access_key_secret: SecretStr | None = None
    security_token: SecretStr | None = None

    def writer_dead(self, written_at: datetime) -> bool:
        """Is whoever wrote at `written_at` known dead (only a runtime that saw every earlier actor die can say)?"""
        return self.actors_dead_before is not None and written_at < self.actors_dead_before

    def lease_over(self, age: float, written_at: datetime) -> bool:
        """Has an intent written at `written_at`, `age` seconds ago, lost its actor's lease?"""
        if self.writer_dead(written_at):
            return True
        # Never sooner than the lists' lag: a re-claim's look-up must see what the first claim made
        # (service-contract.md#C41).
        return age >= max(self.lease_seconds, self.list_lag_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value else None

        raw_hyper = get("BAILIAN_FLOW_DEFAULT_HYPER_PARAMETERS")
        try:
            hyper = json.loads(raw_hyper) if raw_hyper else {}
        except json.JSONDecodeError as exc:
            raise ConfigError(f"BAILIAN_FLOW_DEFAULT_HYPER_PARAMETERS is not JSON: {exc.msg}") from None
        if not isinstance(hyper, dict):
            raise ConfigError("BAILIAN_FLOW_DEFAULT_HYPER_PARAMETERS must be a JSON object")

        default_fields: dict[str, Any] = {
            "model": get("BAILIAN_FLOW_DEFAULT_MODEL"),
            "training_type": get("BAILIAN_FLOW_DEFAULT_TRAINING_TYPE"),
            "hyper_parameters": hyper,
            "on_success": get("BAILIAN_FLOW_ON_SUCCESS"),
            "deploy_plan": get("BAILIAN_FLOW_DEPLOY_PLAN"),
            "deploy_capacity": get("BAILIAN_FLOW_DEPLOY_CAPACITY"),
            "deploy_spec": get("BAILIAN_FLOW_DEPLOY_SPEC"),
            "job_retention": get("BAILIAN_FLOW_JOB_RETENTION"),
            "deployment_ttl": get("BAILIAN_FLOW_DEPLOYMENT_TTL"),
        }
        fields: dict[str, Any] = {
            "api_key": get("DASHSCOPE_API_KEY"),
            "region": get("DASHSCOPE_REGION"),
            "base_url": get("DASHSCOPE_BASE_URL"),
            "workspace": get("DASHSCOPE_WORKSPACE"),
            "bucket": get("BAILIAN_FLOW_BUCKET"),
            "oss_endpoint": get("BAILIAN_FLOW_OSS_ENDPOINT"),
            "oss_region": get("BAILIAN_FLOW_OSS_REGION") or get("FC_REGION"),
            "store": get("BAILIAN_FLOW_STORE"),
            "datasets_prefix": get("BAILIAN_FLOW_DATASETS_PREFIX"),
            "imports_prefix": get("BAILIAN_FLOW_IMPORTS_PREFIX"),
            "deployments_prefix": get("BAILIAN_FLOW_DEPLOYMENTS_PREFIX"),
            "runs_prefix": get("BAILIAN_FLOW_RUNS_PREFIX"),
            "batches_prefix": get("BAILIAN_FLOW_BATCHES_PREFIX"),
            "results_prefix": get("BAILIAN_FLOW_RESULTS_PREFIX"),
            "callback_url": get("BAILIAN_FLOW_CALLBACK_URL"),
            "callback_secret": get("BAILIAN_FLOW_CALLBACK_SECRET"),
            "batch_shard_lines": get("BAILIAN_FLOW_BATCH_SHARD_LINES"),
            "batch_shard_bytes": get("BAILIAN_FLOW_BATCH_SHARD_BYTES"),
            "webhook_url": get("BAILIAN_FLOW_WEBHOOK_URL"),
            "webhook_secret": get("BAILIAN_FLOW_WEBHOOK_SECRET"),
            "api_token": get("BAILIAN_FLOW_API_TOKEN"),
            "lease_seconds": get("BAILIAN_FLOW_LEASE_SECONDS"),
            "list_lag_seconds": get("BAILIAN_FLOW_LIST_LAG_SECONDS"),
            "redrive_after_seconds": get("BAILIAN_FLOW_REDRIVE_AFTER"),
            "actors_dead_before": get("BAILIAN_FLOW_ACTORS_DEAD_BEFORE"),
            "quota_fine_tune_jobs": get("BAILIAN_FLOW_QUOTA_FINE_TUNE_JOBS"),
            "quota_files": get("BAILIAN_FLOW_QUOTA_FILES"),
            "quota_file_bytes": get("BAILIAN_FLOW_QUOTA_FILE_BYTES"),
            "quota_batches": get("BAILIAN_FLOW_QUOTA_BATCHES"),
            "quota_training_slots": get("BAILIAN_FLOW_QUOTA_TRAINING_SLOTS"),
            "timer_page_size": get("BAILIAN_FLOW_TIMER_PAGE_SIZE"),
            "timer_visit_budget": get("BAILIAN_FLOW_TIMER_VISIT_BUDGET"),
            "audit_every_seconds": get("BAILIAN_FLOW_AUDIT_EVERY"),
            "access_key_id": get("ALIBABA_CLOUD_ACCESS_KEY_ID"),
            "access_key_secret": get("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
            "security_token": get("ALIBABA_CLOUD_SECURITY_TOKEN"),
        }
        try:
            defaults = RunDefaults(**{k: v for k, v in default_fields.items() if v is not None})
            return cls(defaults=defaults, **{k: v for k, v in fields.items() if v is not None})
        except ValidationError as exc:
            # Name the offending setting without echoing its (possibly secret) value.
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid settings: {problems}") from None
