"""Account quotas, counted the way the service counts them, and ``POST /_emulator/config`` that changes them.

- Fine-tune jobs: at most 20 that are not FAILED or CANCELED (running *and succeeded* jobs count; deleting a job
  frees its slot). Refused with 429 ``Throttling`` "Only 20 fine-tune job in running or succeeded allowed per user."
- Native files: at most 100 files and 5 GB stored (deleting frees). A file past either is answered, as the file
  management page shows (help.aliyun.com model-studio "百炼文件管理 API", 上传文件 → 返回示例), in an HTTP 200 under
  ``data.failed_uploads``: ``BadRequest.TooMany`` "Out of number, <n> of <n> files has been uploaded." or
  ``BadRequest.TooLarge`` "Out of space, <used> B of <limit> B storage space has been used.".
- Batches: at most 2 running in parallel (validating, in_progress, finalizing, cancelling): 429
  ``LimitExceeded.BatchTasks`` "At most 2 batch tasks may run at once.". UNDOCUMENTED: the limit appears only in
  the seed and the batch pages name no refusal; this answer is the emulator's guess, kept from before.

Tests and benchmarks raise the limits to run thousands of resources; a reset restores the defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from aiohttp import web

from .behaviour import KNOWN_SETTINGS, apply_settings, checked_region, describe
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

    def too_many_message(self, count: int) -> str:
        return f"Out of number, {count} of {self.files} files has been uploaded."

    def too_large_message(self, size: int) -> str:
        return f"Out of space, {size} B of {self.file_bytes} B storage space has been used."

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
    """``POST /_emulator/config``: ``{"quotas": {"fine_tune_jobs": n, "files": n, "file_bytes": n, "batches": n}}``,
    ``profile``, ``region``, the switches of behaviour.py and the options other modules registered
    (``import_success_status``); ``GET`` reads them, with ``usage``: what each quota holds now, counted as the
    quota counts it. Nothing changes unless the whole body is valid."""
    app = request.app
    state = app[STATE_KEY]
    current = quotas(app)
    options: dict[str, Any] = app.get(CONFIG_KEY, {})
    answer: dict[str, Any] = {}
    if request.method == "POST":
        body = await json_object(request)
        unknown = set(body) - {"quotas", *options, *KNOWN_SETTINGS}
        if unknown:
            raise ApiError(400, "InvalidParameter", f"unknown settings: {', '.join(sorted(unknown))}.")
        changes = body.get("quotas") or {}
        names = {item.name for item in fields(Quotas)}
        if not isinstance(changes, dict) or set(changes) - names:
            raise ApiError(400, "InvalidParameter", f"quotas takes {', '.join(sorted(names))}.")
        checked = {name: _limit(name, value) for name, value in changes.items()}
        behaviour = apply_settings(state.behaviour, body)
        region = checked_region(body["region"]) if "region" in body else state.region
        for name, apply in options.items():
            if name in body:
                answer[name] = apply(body[name])
        for name, value in checked.items():
            setattr(current, name, value)
        state.behaviour, state.region = behaviour, region
    for name, apply in options.items():
        answer.setdefault(name, apply(None))
    usage = {name: count() for name, count in app.get(USAGE_KEY, {}).items()}
    settings = describe(state.behaviour, state.region)
    return web.json_response({**answer, **settings, "quotas": asdict(current), "usage": usage})


def setup(app: web.Application) -> None:
    current = quotas(app)

    def reset() -> None:
        for item in fields(Quotas):
            setattr(current, item.name, item.default)

    app[STATE_KEY].add_reset_hook(reset)
    app.router.add_post("/_emulator/config", configure)
    app.router.add_get("/_emulator/config", configure)
