"""What the pipeline's settings make it use (kinds, regions, plans, quotas): what `doctor` checks the account for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PLAN_REGIONS", "TRAINING_REGIONS", "Uses", "uses_of"]

# service-contract.md#C13: the fine-tune API is Beijing only.
TRAINING_REGIONS = ("cn",)
# service-contract.md#C27: MU/DTU deployments Beijing only, PTU Beijing and Singapore. The page names no region
# for lora/cu: the strictest reading (Beijing only) holds.
PLAN_REGIONS: Mapping[str, tuple[str, ...]] = {"ptu": ("cn", "intl")}
DEFAULT_PLAN_REGIONS = ("cn",)
REGION_NAMES = {"cn": "China (Beijing)", "intl": "Singapore"}


@dataclass(frozen=True)
class Uses:
    """The model trained, what a success does (deploy, import, none), the deployment plans, and the quotas the
    pipeline assumes (its settings: what its queues count against)."""

    model: str
    on_success: str
    plans: tuple[str, ...]
    quota_fine_tune_jobs: int
    quota_files: int
    quota_file_bytes: int
    quota_batches: int

    def describe(self) -> str:
        plans = ", ".join(self.plans) or "none"
        return f"model {self.model}, on_success {self.on_success}, plans {plans}"


def uses_of(overrides: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> Uses:
    """The environment's settings (`Settings.from_env`: BAILIAN_FLOW_* and DASHSCOPE_*), overridden by a sidecar's
    keys (`model`, `on_success: {action, plan}`, or a base-model `deploy: {plan}`). Raises `ConfigError` or
    `ValueError` naming a malformed setting."""
    from bailian_flow.config import Settings

    settings = Settings.from_env(environ)
    given = dict(overrides or {})
    model = str(given.get("model") or settings.defaults.model)
    on_success: Any = given.get("on_success", settings.defaults.on_success)
    plan: Any = settings.defaults.deploy_plan
    if isinstance(on_success, Mapping):
        plan = on_success.get("plan", plan)
        on_success = on_success.get("action", "deploy")
    if on_success not in ("deploy", "import", "none"):
        raise ValueError(f"on_success must be deploy, import or none, got {on_success!r}")
    plans: list[str] = [str(plan)] if on_success == "deploy" else []
    deploy = given.get("deploy")
    if isinstance(deploy, Mapping) and deploy.get("plan"):
        plans.append(str(deploy["plan"]))
    return Uses(
        model=model,
        on_success=str(on_success),
        plans=tuple(dict.fromkeys(plans)),
        quota_fine_tune_jobs=settings.quota_fine_tune_jobs,
        quota_files=settings.quota_files,
        quota_file_bytes=settings.quota_file_bytes,
        quota_batches=settings.quota_batches,
    )


def regions_text(regions: tuple[str, ...]) -> str:
    return " and ".join(REGION_NAMES.get(region, region) for region in regions)
