"""What the service offers a run, checked when the run opens: nothing is paid for a run that cannot finish.

Two refusals, each naming the setting to change:

- the configured region (`DASHSCOPE_REGION`) does not offer an operation the run needs: fine-tunes, the Wan
  fine-tunes included, are Beijing only (service-contract.md#C13, #C45); MU/CU/LoRA deployments Beijing only, PTU
  Beijing and Singapore (#C27); import and batches are offered in both (#C30: each site's page lists its own
  region; #C31);
- `plan: ptu` for a fine-tuned or imported model: PTU serves Bailian's own base models only (#C22), so the
  deployment such a run ends with could never be made (and PTU takes no suffix, #C21: the pipeline never sends
  one, since it never deploys on PTU).

A run kind says which operations its runs use (`KindSpec.uses`); the delivery leg's deployment is read from the
run's settings. An object's run fails naming the setting; a REST body is answered 400.
"""

from __future__ import annotations

from typing import Any

from bailian_flow.pipeline.protocol.kinds import spec_of
from bailian_flow.pipeline.protocol.settings import RunSettings, SettingsError

# Operations -> the regions whose pages offer them ("cn" China (Beijing), "intl" Singapore).
FINE_TUNE = "fine-tune"
IMPORT = "import"
BATCH = "batch"
DEPLOY = "deploy"
DEPLOY_PTU = "deploy-ptu"
REGIONS: dict[str, frozenset[str]] = {
    FINE_TUNE: frozenset({"cn"}),
    IMPORT: frozenset({"cn", "intl"}),
    BATCH: frozenset({"cn", "intl"}),
    DEPLOY: frozenset({"cn"}),
    DEPLOY_PTU: frozenset({"cn", "intl"}),
}
_PLACE = {"cn": "China (Beijing)", "intl": "Singapore"}
# What the delivery leg deploys: a model this pipeline made or imported, never a Bailian base model.
_DELIVERING = frozenset({FINE_TUNE, IMPORT})


def _deploys(settings: RunSettings) -> bool:
    wanted = settings.on_success
    return wanted.action == "deploy" or (wanted.action == "import" and wanted.deploy_after_import)


def _operations(uses: frozenset[str], settings: RunSettings | None) -> list[str]:
    operations = sorted(uses)
    if settings is not None and uses & _DELIVERING and _deploys(settings):
        operations.append(DEPLOY_PTU if settings.on_success.plan == "ptu" else DEPLOY)
    return operations


def refusal(region: str, kind: str, settings: Any, *, object_key: str | None = None) -> SettingsError | None:
    """Why a run of `kind` with `settings` cannot run in `region`, or None when it can."""
    uses = spec_of(kind).uses
    delivering = settings if isinstance(settings, RunSettings) else None
    if delivering is not None and uses & _DELIVERING and _deploys(delivering) and delivering.on_success.plan == "ptu":
        return SettingsError(
            "setting on_success.plan: ptu serves Bailian's own base models only, not a fine-tuned or imported "
            "model; use mu, cu or lora",
            object_key=object_key,
            field="on_success.plan",
        )
    for operation in _operations(uses, delivering):
        offered = REGIONS.get(operation, frozenset({region}))
        if region not in offered:
            places = " or ".join(_PLACE[name] for name in sorted(offered))
            what = operation.replace("-", " ")
            if delivering is not None and operation in (DEPLOY, DEPLOY_PTU):
                what = f"a deployment on plan {delivering.on_success.plan}"
            return SettingsError(
                f"setting region: {what} is offered only in {places}, and "
                f"DASHSCOPE_REGION is {region} ({_PLACE.get(region, region)})",
                object_key=object_key,
                field="region",
            )
    return None


def check(region: str, kind: str, settings: Any, *, object_key: str | None = None) -> None:
    """Raise the `refusal`, if any (a SettingsError: a FAILED run for an object, a 400 for a REST body)."""
    refused = refusal(region, kind, settings, object_key=object_key)
    if refused is not None:
        raise refused
