"""Account quotas, counted the way the service counts them, and ``POST /_emulator/config`` that changes them.

- Fine-tune jobs: at most 20 that are not FAILED or CANCELED (running *and succeeded* jobs count; deleting a job
  frees its slot). Refused with 429 ``Throttling`` "Only 20 fine-tune job in running or succeeded allowed per user."
- Native files: at most 100 files and 5 GB stored (deleting frees). The reference documents the limit but not the
  refusal; the emulator answers 429 ``Throttling.AllocationQuota`` "Out of space: ...", the service's 429 code for
  an allocation quota.
- Batches: at most 2 running in parallel (validating, in_progress, finalizing, cancelling): 429
  ``LimitExceeded.BatchTasks`` "At most 2 batch tasks may run at once.".

Tests and benchmarks raise the limits to run thousands of resources; a reset restores the defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from aiohttp import web

from .common import ApiError, json_object
from .state import STATE_KEY

GB = 1 << 30


@dataclass
class Quotas:
    fine_tune_jobs: int = 20
    files: int = 100
    file_bytes: int = 5 * GB
    batches: int = 2

    def fine_tune_message(self) -> str:
        return f"Only {self.fine_tune_jobs} fine-tune job in running or succeeded allowed per user."

    def files_message(self, count: int, size: int) -> str:
        return (
            f"Out of space: native file storage allows {self.files} files and {self.file_bytes} bytes per account "
            f"({count} files, {size} bytes stored)."
        )

    def batches_message(self) -> str:
        return f"At most {self.batches} batch tasks may run at once."


QUOTAS_KEY = web.AppKey("bailian_flow.emulator.quotas", Quotas)
# What each quota holds now, reported by `GET /_emulator/config` as "usage": name -> () -> count.
USAGE_KEY = web.AppKey("bailian_flow.emulator.quota_usage", dict)
# Other settings of /_emulator/config, each applied by the module that owns it: name -> (app, value) -> answer.
CONFIG_KEY = web.AppKey("bailian_flow.emulator.config_options", dict)


def quotas(app: web.Application) -> Quotas:
    if QUOTAS_KEY not in app:
        app[QUOTAS_KEY] = Quotas()
    return app[QUOTAS_KEY]


def add_config_option(app: web.Application, name: str, apply: Any) -> None:
    """Let `/_emulator/config` set `name`: `apply(value)` validates (raising ApiError) and returns the new value."""
    if CONFIG_KEY not in app:
        app[CONFIG_KEY] = {}
    app[CONFIG_KEY][name] = apply


def add_usage(app: web.Application, name: str, count: Any) -> None:
    """Report `count()` as the use of quota `name` (a field of `Quotas`)."""
    if USAGE_KEY not in app:
        app[USAGE_KEY] = {}
    app[USAGE_KEY][name] = count


def _limit(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(400, "InvalidParameter", f"{name} must be a non-negative integer.")
    return value


async def configure(request: web.Request) -> web.Response:
    """``POST /_emulator/config``: ``{"quotas": {"fine_tune_jobs": n, "files": n, "file_bytes": n, "batches": n}}``
    and the options other modules registered (``import_success_status``); ``GET`` reads them, with ``usage``:
    what each quota holds now, counted as the quota counts it."""
    app = request.app
    current = quotas(app)
    options: dict[str, Any] = app.get(CONFIG_KEY, {})
    answer: dict[str, Any] = {}
    if request.method == "POST":
        body = await json_object(request)
        unknown = set(body) - {"quotas", *options}
        if unknown:
            raise ApiError(400, "InvalidParameter", f"unknown settings: {', '.join(sorted(unknown))}.")
        changes = body.get("quotas") or {}
        names = {item.name for item in fields(Quotas)}
        if not isinstance(changes, dict) or set(changes) - names:
            raise ApiError(400, "InvalidParameter", f"quotas takes {', '.join(sorted(names))}.")
        checked = {name: _limit(name, value) for name, value in changes.items()}
        for name, apply in options.items():
            if name in body:
                answer[name] = apply(body[name])
        for name, value in checked.items():
            setattr(current, name, value)
    for name, apply in options.items():
        answer.setdefault(name, apply(None))
    usage = {name: count() for name, count in app.get(USAGE_KEY, {}).items()}
    return web.json_response({**answer, "quotas": asdict(current), "usage": usage})


def setup(app: web.Application) -> None:
    current = quotas(app)

    def reset() -> None:
        for item in fields(Quotas):
            setattr(current, item.name, item.default)

    app[STATE_KEY].add_reset_hook(reset)
    app.router.add_post("/_emulator/config", configure)
    app.router.add_get("/_emulator/config", configure)
