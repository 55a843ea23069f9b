"""When an intent's actor has lost its lease: after `lease_seconds`, or at once when its runtime knows it died."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bailian_flow.config import ConfigError, Settings


def test_an_intent_written_before_the_known_death_of_its_actors_needs_no_lease() -> None:
    restart = datetime(2026, 12, 7, 19, 0, 0, 500000, tzinfo=timezone.utc)
    settings = Settings.from_env(
        {"BAILIAN_FLOW_ACTORS_DEAD_BEFORE": "2026-12-07T19:00:00.500000Z", "BAILIAN_FLOW_LEASE_SECONDS": "660"}
    )
    assert settings.actors_dead_before == restart
    assert settings.lease_over(1.0, restart - timedelta(microseconds=1)), "written by the killed process"
    assert not settings.lease_over(1.0, restart), "written since: its actor may be running"
    assert settings.lease_over(660.0, restart + timedelta(seconds=1)), "the lease still runs out as on FC"


def test_without_the_hint_only_the_lease_counts() -> None:
    settings = Settings.from_env({"BAILIAN_FLOW_LEASE_SECONDS": "10", "BAILIAN_FLOW_LIST_LAG_SECONDS": "0"})
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert settings.actors_dead_before is None
    assert not settings.lease_over(9.9, long_ago) and settings.lease_over(10.0, long_ago)


def test_no_lease_runs_out_before_the_lists_may_show_what_its_actor_made() -> None:
    # A re-claim looks up what the first claim made: never before the lists' lag (docs/service-contract.md C41).
    settings = Settings.from_env({"BAILIAN_FLOW_LEASE_SECONDS": "0", "BAILIAN_FLOW_LIST_LAG_SECONDS": "30"})
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert not settings.lease_over(29.9, long_ago) and settings.lease_over(30.0, long_ago)
    assert Settings.from_env({}).lease_over(660.0, long_ago), "by default the lease (660 s) outlasts the lag (60 s)"


@pytest.mark.parametrize("value", ["2026-12-07T19:00:00", "yesterday"])
def test_a_moment_without_a_zone_or_not_a_moment_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigError, match="actors_dead_before"):
        Settings.from_env({"BAILIAN_FLOW_ACTORS_DEAD_BEFORE": value})
