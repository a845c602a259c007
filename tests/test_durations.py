from datetime import UTC, datetime, timedelta

import pytest

from kdebug.durations import format_duration, parse_duration, parse_instant
from kdebug.errors import ExitCode, UsageError

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("90s", 90.0, id="seconds"),
        pytest.param("2m", 120.0, id="minutes"),
        pytest.param("1h30m", 5400.0, id="hours and minutes"),
        pytest.param("1h2m3s", 3723.0, id="all units"),
        pytest.param("1.5s", 1.5, id="fraction"),
        pytest.param("1.5h", 5400.0, id="fraction of an hour"),
        pytest.param("250ms", 0.25, id="milliseconds"),
        pytest.param("1m250ms", 60.25, id="minutes and milliseconds"),
        pytest.param("2d", 172800.0, id="days"),
        pytest.param("1w", 604800.0, id="week"),
        pytest.param("1w2d", 777600.0, id="week and days"),
        pytest.param("1d12h", 129600.0, id="day and hours"),
        pytest.param("45", 45.0, id="bare number is seconds"),
        pytest.param("0.5", 0.5, id="bare fraction is seconds"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param(" 2M ", 120.0, id="spaces and capitals"),
    ],
)
def test_parse_duration_reads_units(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("soon", id="word"),
        pytest.param("2x", id="unknown unit"),
        pytest.param("2y", id="years are not a unit"),
        pytest.param("m2", id="unit first"),
        pytest.param("1h 30m", id="inner space"),
        pytest.param("-5s", id="negative"),
        pytest.param("1h30", id="trailing bare number"),
        pytest.param("1.s", id="dot without digits"),
        pytest.param(".5s", id="no leading digit"),
        pytest.param("1e3", id="exponent"),
        pytest.param("1,5s", id="comma"),
    ],
)
def test_parse_duration_rejects_garbage_as_usage_error(text):
    with pytest.raises(UsageError) as info:
        parse_duration(text, option="--timeout")
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message.startswith("--timeout: invalid duration")
    assert "\n" not in info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1h", NOW - timedelta(hours=1), id="hour ago"),
        pytest.param("1h30m", NOW - timedelta(hours=1, minutes=30), id="combined units ago"),
        pytest.param("2d", NOW - timedelta(days=2), id="days ago"),
        pytest.param("2w", NOW - timedelta(weeks=2), id="weeks ago"),
        pytest.param("1.5s", NOW - timedelta(seconds=1.5), id="fraction ago"),
        pytest.param("2026-11-27", datetime(2026, 11, 27, tzinfo=UTC), id="date is UTC midnight"),
        pytest.param("20261127", datetime(2026, 11, 27, tzinfo=UTC), id="compact date is a date"),
        pytest.param("2026-11-27T06:00:00Z", datetime(2026, 11, 27, 6, tzinfo=UTC), id="rfc3339 zulu"),
        pytest.param(
            "2026-11-27T08:00:00+02:00", datetime(2026, 11, 27, 6, tzinfo=UTC), id="rfc3339 offset to utc"
        ),
    ],
)
def test_parse_instant_reads_durations_and_times(text, expected):
    assert parse_instant(text, NOW, option="--since") == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("yesterday", id="word"),
        pytest.param("1h 30m", id="inner space"),
        pytest.param("-1h", id="negative"),
        pytest.param("2026-13-01", id="no such month"),
        pytest.param("", id="empty"),
        pytest.param("90", id="a span back from now needs its unit"),
        pytest.param("2026", id="a bare year is no date"),
    ],
)
def test_parse_instant_rejects_garbage_as_usage_error(text):
    with pytest.raises(UsageError) as info:
        parse_instant(text, NOW, option="--since")
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message.startswith("--since: invalid time")
    assert "\n" not in info.value.message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(120, "2m", id="minutes"),
        pytest.param(90, "1m30s", id="minutes and seconds"),
        pytest.param(3600, "1h", id="hour"),
        pytest.param(1, "1s", id="second"),
        pytest.param(0.5, "0.5s", id="below a second"),
    ],
)
def test_format_duration_is_shortest_form(seconds, text):
    assert format_duration(seconds) == text
