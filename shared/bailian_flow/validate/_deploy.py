"""Base-model deployment markers (`deployments/**.deploy.yaml`, `POST /runs {"deploy": {...}}`), checked in one place.

```yaml
deploy:
  model: qwen-flash-2025-07-28   # required: the Bailian model to deploy (model_name)
  plan: ptu                      # ptu | mu | cu | lora; left out: the capacity-only form (emo, animate-anyone-detect)
  name: qwen-flash-ptu           # optional display name (default: chosen by the caller, e.g. the marker's stem)
  ptu_capacity: {input_tpm: 10000, output_tpm: 1000}   # required with ptu, refused otherwise
  deploy_spec: MU1               # required with mu, refused otherwise
  capacity: 1                    # optional with mu, cu, lora (a multiple of the model's base_capacity); not ptu
  suffix: flash01                # optional, at most 8 characters; not with ptu (the service names PTU deployments)
  ttl: 24h                       # optional: tear down this long after RUNNING (s, m, h, d; or seconds as a number)
  rpm_limit: 600                 # optional limits, as the deployment API takes them
  tpm_limit: 100000
```

Sources: the seed's "Model Deployment" parameters (model_name, plan mu|cu|ptu|lora, name, capacity, ptu_capacity with
input_tpm and output_tpm "Required if plan is ptu", deploy_spec "Required if plan is mu", suffix "Max 8 chars") and
its PTU example; bailian-api.md section 2 and its Corrections ("a PTU create takes no suffix", rpm_limit/tpm_limit).
Not documented, chosen strictly: the suffix alphabet (ASCII letters and digits), the name length (64), the TTL range
(1 minute to 365 days), that capacity is refused with PTU (PTU sizes by ptu_capacity).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import DatasetError

Plan = Literal["ptu", "mu", "cu", "lora"]
PLANS: tuple[Plan, ...] = ("ptu", "mu", "cu", "lora")
MAX_MARKER_BYTES = 64 << 10
MAX_NAME = 64
MAX_SUFFIX = 8
MIN_TTL, MAX_TTL = 60, 365 * 86400
_KEYS = {"model", "plan", "name", "ptu_capacity", "deploy_spec", "capacity", "suffix", "ttl", "rpm_limit", "tpm_limit"}
_SUFFIX = re.compile(r"[A-Za-z0-9]{1,8}")
_TTL = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class DeploySpec:
    model: str
    # None: the capacity-only form of the deployment reference's `emo` sample (image and video base models).
    plan: Plan | None
    name: str | None = None
    ptu_capacity: Mapping[str, int] | None = None
    deploy_spec: str | None = None
    capacity: int | None = None
    suffix: str | None = None
    ttl_seconds: int | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None

    def create_body(self, default_name: str) -> dict[str, Any]:
        """The `POST /api/v1/deployments` body for this marker."""
        body: dict[str, Any] = {"model_name": self.model, "name": self.name or default_name}
        optional = {
            "plan": self.plan,
            "ptu_capacity": dict(self.ptu_capacity) if self.ptu_capacity else None,
            "deploy_spec": self.deploy_spec,
            "capacity": self.capacity,
            "suffix": self.suffix,
            "rpm_limit": self.rpm_limit,
            "tpm_limit": self.tpm_limit,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body


def parse_deploy_marker(source: bytes | str | Mapping[str, Any], *, object_name: str) -> DeploySpec:
    """The marker's spec; a `DatasetError` naming the field (`deploy.plan`, ...) for the first problem."""

    def fail(reason: str, at: str | None = None) -> DatasetError:
        return DatasetError(object_name, reason, field=at)

    document: Any = source
    if isinstance(source, (bytes, str)):
        if len(source) > MAX_MARKER_BYTES:
            raise fail(f"the marker is larger than {MAX_MARKER_BYTES:,} bytes")
        import yaml

        try:
            document = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise fail(f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, Mapping) or set(document) != {"deploy"}:
        raise fail("expected a mapping with the single key 'deploy'")
    spec = document["deploy"]
    if not isinstance(spec, Mapping):
        raise fail("expected a mapping", "deploy")
    for key in spec:
        if key not in _KEYS:
            raise fail(f"unknown key (expected some of {', '.join(sorted(_KEYS))})", f"deploy.{key}")
    model = spec.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > 128:
        raise fail("expected the name of a Bailian model", "deploy.model")
    plan = spec.get("plan")
    if plan is not None and plan not in PLANS:
        raise fail(f"expected one of {', '.join(PLANS)}, got {plan!r}", "deploy.plan")
    name = spec.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME):
        raise fail(f"expected a display name of 1 to {MAX_NAME} characters", "deploy.name")
    ptu = _ptu_capacity(spec.get("ptu_capacity"), plan, fail)
    deploy_spec = spec.get("deploy_spec")
    if plan == "mu" and (not isinstance(deploy_spec, str) or not deploy_spec.strip()):
        raise fail("required with plan mu (for example MU1)", "deploy.deploy_spec")
    if plan != "mu" and deploy_spec is not None:
        raise fail(f"only with plan mu, not {plan or 'no plan'}", "deploy.deploy_spec")
    capacity = _positive(spec.get("capacity"), "deploy.capacity", fail)
    if plan == "ptu" and capacity is not None:
        raise fail("a PTU deployment is sized by ptu_capacity, not capacity", "deploy.capacity")
    suffix = spec.get("suffix")
    if suffix is not None:
        if plan == "ptu":
            raise fail("a PTU deployment takes no suffix (the service names it)", "deploy.suffix")
        if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix):
            raise fail(f"expected 1 to {MAX_SUFFIX} ASCII letters or digits", "deploy.suffix")
    return DeploySpec(
        model=model.strip(),
        plan=plan,
        name=name.strip() if isinstance(name, str) else None,
        ptu_capacity=ptu,
        deploy_spec=deploy_spec.strip() if isinstance(deploy_spec, str) else None,
        capacity=capacity,
        suffix=suffix,
        ttl_seconds=_ttl(spec.get("ttl"), fail),
        rpm_limit=_positive(spec.get("rpm_limit"), "deploy.rpm_limit", fail),
        tpm_limit=_positive(spec.get("tpm_limit"), "deploy.tpm_limit", fail),
    )


def _ptu_capacity(value: Any, plan: str | None, fail: Any) -> dict[str, int] | None:
    if plan != "ptu":
        if value is not None:
            raise fail(f"only with plan ptu, not {plan or 'no plan'}", "deploy.ptu_capacity")
        return None
    if not isinstance(value, Mapping):
        raise fail("required with plan ptu: {input_tpm, output_tpm}", "deploy.ptu_capacity")
    unknown = set(value) - {"input_tpm", "output_tpm"}
    if unknown:
        raise fail("unknown key", f"deploy.ptu_capacity.{sorted(unknown)[0]}")
    out: dict[str, int] = {}
    for key in ("input_tpm", "output_tpm"):
        number = _positive(value.get(key), f"deploy.ptu_capacity.{key}", fail)
        if number is None:
            raise fail("required: tokens per minute", f"deploy.ptu_capacity.{key}")
        out[key] = number
    return out


def _positive(value: Any, at: str, fail: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise fail(f"expected a positive whole number, got {value!r}", at)
    return value


def _ttl(value: Any, fail: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (parts := _TTL.findall(value)) and _TTL.sub("", value).strip() == "":
        seconds = sum(int(number) * _UNITS[unit] for number, unit in parts)
    else:
        raise fail(f"expected a duration like 30m, 24h or 7d, got {value!r}", "deploy.ttl")
    if not MIN_TTL <= seconds <= MAX_TTL:
        raise fail(f"expected between 1 minute and 365 days, got {seconds:,} s", "deploy.ttl")
    return seconds
