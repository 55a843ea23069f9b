"""Switches for the behaviours Bailian does not document, the profiles that set them, and the region.

The emulator follows the official pages by default. Where they are silent and correctness could hinge on the
answer, the behaviour is a switch of ``/_emulator/config``; ``{"profile": "strict"}`` sets every switch to its
strictest reading, ``{"profile": "default"}`` back. ``/_emulator/reset`` restores the profile (and region) the
process was started with (``--profile``, ``--region``).

Each switch, its default, its strict value and why:

- ``job_name_kept`` (true / false): the training reference (help.aliyun.com model-studio "模型调优 API 参考" and
  "调优任务对象", field ``output.jobs_name``: "同 output.job_id") shows ``job_name == job_id`` in every sample;
  whether a ``job_name`` sent is kept is undocumented. Off: the job answers its ``job_id`` as its name.
- ``delete_requires_stopped`` (false / true): the deployment reference's sample deletes a running deployment; a
  reference CLI says only STOPPED or FAILED ones. No stop operation is documented, so on: only STOPPED or FAILED
  deployments delete (400 ``OperationDenied``, the code the import reference uses for a delete in the wrong state).
- ``list_lag_seconds`` (0 / 30): how long native lists lag creates is undocumented.
- ``deployments_page_size_cap`` (null / 100): ``/deployments`` page size is documented only for
  ``/deployments/models`` (max 200); a CLI reference says 100. Larger asks answer 100 items with ``page_size``
  100 (not a 400): a silent cap is the stricter test, a client that pages until a short page stops early.
- ``ptu_suffix_refused`` (false / true): the backend names a PTU deployment; whether a ``suffix`` is ignored or
  refused is undocumented. On: 400 ``InvalidParameter``.
- ``serial_training`` (false / true): QUEUING means "only one training task runs at a time"; whether that is per
  account is undocumented. On: one job trains at a time, the others stay QUEUING until it ends.
- ``serial_training_refuses_create`` (false / true): the service has a second 429, "Too many fine-tune job in
  running, please retry later."; when it is given is undocumented. On: a create while another job is unfinished.
- ``native_descriptions_listed`` (true / false): whether ``GET /files`` echoes ``description`` is undocumented.
- ``batch_answers_in_order`` (true / false): the batch pages say each answer carries its request's
  ``custom_id``; in what order a result file lists them is undocumented. Off: each result file lists its lines in
  a shuffled order (seeded by the batch id, so a rerun agrees).
- ``deployment_name_echoed`` (true / false): the create takes a display ``name``; the deployment object's documented
  fields ("部署對象", 響應參數) carry none. Off: a deployment created from then on answers without ``name``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .common import ApiError

PROFILES = ("default", "strict")
# Regions the emulator knows: "cn" is China (Beijing), "intl" Singapore.
REGIONS = ("cn", "intl")
MAX_LAG_SECONDS = 86400


@dataclass
class Behaviour:
    job_name_kept: bool = True
    delete_requires_stopped: bool = False
    list_lag_seconds: float = 0.0
    deployments_page_size_cap: int | None = None
    ptu_suffix_refused: bool = False
    serial_training: bool = False
    serial_training_refuses_create: bool = False
    native_descriptions_listed: bool = True
    batch_answers_in_order: bool = True
    deployment_name_echoed: bool = True

    @classmethod
    def profile(cls, name: str) -> Behaviour:
        if name == "strict":
            return cls(
                job_name_kept=False,
                delete_requires_stopped=True,
                list_lag_seconds=30.0,
                deployments_page_size_cap=100,
                ptu_suffix_refused=True,
                serial_training=True,
                serial_training_refuses_create=True,
                native_descriptions_listed=False,
                batch_answers_in_order=False,
                deployment_name_echoed=False,
            )
        if name == "default":
            return cls()
        raise ValueError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}")

    def profile_name(self) -> str:
        """The profile these switches equal, or "custom"."""
        for name in PROFILES:
            if self == Behaviour.profile(name):
                return name
        return "custom"


SWITCHES = tuple(item.name for item in fields(Behaviour))


def _checked(name: str, value: Any) -> Any:
    """A switch value from the control API, validated; ApiError (400) otherwise."""
    if name == "list_lag_seconds":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_LAG_SECONDS:
            raise ApiError(400, "InvalidParameter", "list_lag_seconds must be a number of seconds from 0 to 86400.")
        return float(value)
    if name == "deployments_page_size_cap":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 200):
            raise ApiError(400, "InvalidParameter", "deployments_page_size_cap must be null or an integer in [1, 200].")
        return value
    if not isinstance(value, bool):
        raise ApiError(400, "InvalidParameter", f"{name} must be true or false.")
    return value


def apply_settings(current: Behaviour, body: dict[str, Any]) -> Behaviour:
    """The switches after ``body``: its ``profile`` first, then each switch it names."""
    result = current
    if "profile" in body:
        try:
            result = Behaviour.profile(str(body["profile"]))
        except ValueError as exc:
            raise ApiError(400, "InvalidParameter", str(exc)) from None
    changes = {name: _checked(name, body[name]) for name in SWITCHES if name in body}
    return replace(result, **changes)


def checked_region(value: Any) -> str:
    if value not in REGIONS:
        raise ApiError(400, "InvalidParameter", f"region must be one of {', '.join(REGIONS)}, got {value!r}.")
    return str(value)


def describe(behaviour: Behaviour, region: str) -> dict[str, Any]:
    return {"profile": behaviour.profile_name(), "region": region, **asdict(behaviour)}


def region_refusal(region: str, offered: tuple[str, ...], what: str) -> ApiError | None:
    """The refusal of an operation the region does not offer. The pages say the API "is only open in the Beijing
    region; use the console of other regions" and name no error: the most plausible answer is the one for an API
    that does not exist there, a 404 ``NotFound``."""
    if region in offered:
        return None
    places = " or ".join({"cn": "China (Beijing)", "intl": "Singapore"}[name] for name in offered)
    return ApiError(404, "NotFound", f"{what} is only available in the {places} region.")


KNOWN_SETTINGS = frozenset({"profile", "region", *SWITCHES})
