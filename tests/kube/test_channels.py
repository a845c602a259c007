import json

import pytest

from kdebug.kube import channels
from kdebug.kube.channels import RemoteStatus


def test_frame_round_trip_keeps_channel_and_payload():
    frame = channels.encode_frame(channels.STDIN, b"ls\n")
    assert frame == b"\x00ls\n"
    assert channels.decode_frame(frame) == (0, b"ls\n")


def test_empty_message_decodes_to_no_channel():
    assert channels.decode_frame(b"") == (-1, b"")


def test_resize_frame_is_kubectl_json_with_newline():
    frame = channels.resize_frame(120, 40)
    assert frame[0] == channels.RESIZE
    assert frame.endswith(b"\n")
    assert json.loads(frame[1:]) == {"Width": 120, "Height": 40}


def test_initial_resize_sends_size_plus_one_then_real_size():
    first, second = channels.initial_resize_frames(80, 24)
    assert json.loads(first[1:]) == {"Width": 81, "Height": 25}
    assert json.loads(second[1:]) == {"Width": 80, "Height": 24}


def test_close_stdin_frame_names_stdin_channel():
    assert channels.close_stdin_frame() == bytes([255, 0])


NON_ZERO = {
    "metadata": {},
    "status": "Failure",
    "message": "command terminated with non-zero exit code: 3",
    "reason": "NonZeroExitCode",
    "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"metadata": {}, "status": "Success"}, RemoteStatus(0), id="success is 0"),
        pytest.param(NON_ZERO, RemoteStatus(3, NON_ZERO["message"], "NonZeroExitCode"), id="exit code cause"),
        pytest.param(
            {"status": "Failure", "message": "container not found", "reason": "InternalError"},
            RemoteStatus(None, "container not found", "InternalError"),
            id="failure without exit code",
        ),
        pytest.param(
            {
                "status": "Failure",
                "message": "m",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": "x"}]},
            },
            RemoteStatus(None, "m", "NonZeroExitCode"),
            id="unreadable exit code",
        ),
    ],
)
def test_parse_status_maps_status_to_exit_code(body, expected):
    assert channels.parse_status(json.dumps(body).encode()) == expected


def test_parse_status_keeps_plain_text_errors():
    assert channels.parse_status(b"error: boom\n") == RemoteStatus(None, "error: boom")
