import pytest

from kdebug.durations import format_duration, parse_duration
from kdebug.errors import ExitCode, UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("90s", 90.0, id="seconds"),
        pytest.param("2m", 120.0, id="minutes"),
        pytest.param("1h30m", 5400.0, id="hours and minutes"),
        pytest.param("1h2m3s", 3723.0, id="all units"),
        pytest.param("1.5s", 1.5, id="fraction"),
        pytest.param("250ms", 0.25, id="milliseconds"),
        pytest.param("45", 45.0, id="bare number is seconds"),
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
        pytest.param("m2", id="unit first"),
        pytest.param("1h 30m", id="inner space"),
        pytest.param("-5s", id="negative"),
    ],
)
def test_parse_duration_rejects_garbage_as_usage_error(text):
    with pytest.raises(UsageError) as info:
        parse_duration(text, option="--timeout")
    assert info.value.exit_code == ExitCode.USAGE
    assert "--timeout" in info.value.message


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
