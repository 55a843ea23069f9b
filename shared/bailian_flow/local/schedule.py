"""FC timer `cronExpression` → an APScheduler trigger.

FC accepts `@every 1m` / `@every 30s` / `@every 1h30m`, or six fields with seconds first
(`0 0 4 * * *`), optionally prefixed with `CRON_TZ=<zone>`; UTC by default. `?` means "any" as in Quartz.
APScheduler's `CronTrigger.from_crontab` takes five fields and numbers weekdays from Monday, so the trigger is
built field by field here, with cron's Sunday-first weekday numbers turned into names.
"""

from __future__ import annotations

import re
from datetime import timedelta, timezone, tzinfo
from typing import Any

_EVERY = re.compile(r"^@every\s+((?:\d+(?:\.\d+)?(?:ms|s|m|h))+)$")
_EVERY_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CronError(ValueError):
    """The cronExpression is not one FC accepts."""


def every_seconds(expression: str) -> float | None:
    """Seconds of an `@every` expression, None for a cron expression."""
    match = _EVERY.match(expression.strip())
    if not match:
        return None
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _EVERY_PART.findall(match.group(1)))


def parse_cron(expression: str) -> tuple[dict[str, str], tzinfo]:
    """Six-field cron (seconds first, optional CRON_TZ=) → CronTrigger keyword fields and time zone."""
    text = expression.strip()
    zone: tzinfo = timezone.utc
    if text.startswith("CRON_TZ="):
        zone_name, _, text = text[len("CRON_TZ=") :].partition(" ")
        try:
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(zone_name)
        except Exception:  # ZoneInfoNotFoundError or ValueError on a malformed key
            raise CronError(f"unknown time zone in {expression!r}") from None
    fields = text.split()
    if len(fields) != 6:
        raise CronError(f"{expression!r}: expected 6 fields (seconds first) or @every")
    second, minute, hour, day, month, weekday = ("*" if f == "?" else f for f in fields)
    return (
        {
            "second": second,
            "minute": minute,
            "hour": hour,
            "day": day,
            "month": month,
            "day_of_week": _weekday_names(weekday),
        },
        zone,
    )


def _weekday_names(field: str) -> str:
    def name(token: str) -> str:
        if token.isdigit():
            number = int(token)
            if number > 7:
                raise CronError(f"day of week {number} out of range")
            return _WEEKDAYS[number]
        return token.lower()

    parts = []
    for item in field.split(","):
        base, slash, step = item.partition("/")
        if base != "*":
            base = "-".join(name(t) for t in base.split("-"))
        parts.append(base + slash + step)
    return ",".join(parts)


def make_trigger(expression: str, *, interval_override: float | None = None) -> Any:
    """An APScheduler trigger for the expression (or a plain interval when overridden, as the demo does)."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if interval_override is not None:
        return IntervalTrigger(seconds=interval_override, timezone=timezone.utc)
    seconds = every_seconds(expression)
    if seconds is not None:
        if seconds <= 0:
            raise CronError(f"{expression!r}: interval must be positive")
        return IntervalTrigger(seconds=seconds, timezone=timezone.utc)
    fields, zone = parse_cron(expression)
    try:
        return CronTrigger(timezone=zone, **fields)
    except ValueError as exc:
        raise CronError(f"{expression!r}: {exc}") from None


def next_fire_delay(expression: str) -> timedelta:
    """How long from now until the expression first fires (used to validate s.yaml)."""
    from datetime import datetime

    trigger = make_trigger(expression)
    now = datetime.now(timezone.utc)
    fire = trigger.get_next_fire_time(None, now)
    if fire is None:
        raise CronError(f"{expression!r} never fires")
    delta: timedelta = fire - now
    return delta
