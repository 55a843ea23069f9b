"""s.yaml variable resolution and FC cron expressions, as the local runtime reads them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bailian_flow.local.schedule import CronError, every_seconds, make_trigger, parse_cron
from bailian_flow.local.spec import LOCAL_ACCOUNT_ID, SpecError, load_spec, resolve


def test_serverless_devs_variables_resolve() -> None:
    scope = {"vars": {"region": "cn-beijing", "nested": {"a": 1}}}
    env = {"KEY": "secret"}
    assert resolve("${vars.region}", scope, env) == "cn-beijing"
    assert resolve("${vars.nested}", scope, env) == {"a": 1}  # a whole expression keeps its type
    assert resolve("oss-${vars.region}-internal", scope, env) == "oss-cn-beijing-internal"
    assert resolve("${env('KEY')}", scope, env) == "secret"
    assert resolve('${env("MISSING", "fallback")}', scope, env) == "fallback"
    assert resolve("${env('MISSING', '{}')}", scope, env) == "{}"
    assert resolve("${env.KEY}", scope, env) == "secret"
    assert resolve("acs:ram::${config('AccountID')}:role/r", scope, env) == f"acs:ram::{LOCAL_ACCOUNT_ID}:role/r"
    with pytest.raises(SpecError):
        resolve("${vars.nope}", scope, env)


def test_project_s_yaml_loads_with_yaml_anchors() -> None:
    app = load_spec(Path(__file__).resolve().parents[2] / "s.yaml", environ={"BAILIAN_FLOW_BUCKET": "my-bucket"})
    upload = app.function("on_upload")
    assert upload.oss_triggers[0].bucket == "my-bucket"
    assert upload.environment["BAILIAN_FLOW_BUCKET"] == "my-bucket"
    assert app.function("webhook").environment == upload.environment  # one anchored environment


@pytest.mark.parametrize(
    ("expression", "seconds"), [("@every 1m", 60), ("@every 30s", 30), ("@every 1h30m", 5400), ("0 * * * * *", None)]
)
def test_every_expressions(expression: str, seconds: float | None) -> None:
    assert every_seconds(expression) == seconds


def test_six_field_cron_has_seconds_first_and_sunday_zero() -> None:
    fields, zone = parse_cron("0 30 4 ? * 0")
    assert fields == {"second": "0", "minute": "30", "hour": "4", "day": "*", "month": "*", "day_of_week": "sun"}
    assert zone == timezone.utc
    trigger = make_trigger("0 30 4 * * 1-5")
    fire = trigger.get_next_fire_time(None, datetime(2024, 1, 6, 12, 0, tzinfo=timezone.utc))  # a Saturday
    assert fire == datetime(2024, 1, 8, 4, 30, tzinfo=timezone.utc)  # Monday


def test_cron_tz_prefix_sets_the_zone() -> None:
    trigger = make_trigger("CRON_TZ=Asia/Shanghai 0 0 4 * * *")
    fire = trigger.get_next_fire_time(None, datetime(2024, 1, 1, 0, 0, tzinfo=timezone.utc))
    assert fire.astimezone(timezone.utc) == datetime(2024, 1, 1, 20, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("expression", ["0 0 4 * *", "@every", "CRON_TZ=Nowhere/Land 0 0 4 * * *", "0 0 99 * * *"])
def test_bad_expressions_are_refused(expression: str) -> None:
    with pytest.raises(CronError):
        make_trigger(expression)


def test_interval_override_replaces_the_schedule() -> None:
    trigger = make_trigger("@every 1m", interval_override=2)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    first = trigger.get_next_fire_time(None, start)
    assert trigger.get_next_fire_time(first, first) - first == timedelta(seconds=2)
