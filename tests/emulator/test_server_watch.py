"""Watches: chunked JSON event lines, replay from a resourceVersion, 410 Expired, bookmarks, shutdown."""

from __future__ import annotations

import json
import threading

PODS = "/api/v1/namespaces/default/pods"


def _watch(api, **params):
    query = {"watch": "true", "timeoutSeconds": "20", **params}
    response = api.get(PODS, params=query, stream=True)
    assert response.status_code == 200
    return response, (json.loads(line) for line in response.iter_lines(chunk_size=1) if line)


def _label_patch(api, name, value):
    response = api.patch(f"{PODS}/{name}", {"metadata": {"labels": {"v": value}}})
    assert response.status_code == 200
    return response.json()


def test_watch_from_zero_starts_with_added_events(api, make_pod):
    api.post(PODS, make_pod(name="a"))
    response, events = _watch(api, resourceVersion="0")
    with response:
        first = next(events)
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "a")
    assert first["object"]["kind"] == "Pod"


def test_watch_from_list_version_sees_later_changes_only(api, emulator, make_pod):
    api.post(PODS, make_pod(name="a"))
    # settled first: the runtime's own status updates would be later changes too
    emulator.wait_for(lambda: emulator.get("pods", "default", "a")["status"]["phase"] == "Running")
    listed = api.get(PODS).json()["metadata"]["resourceVersion"]
    response, events = _watch(api, resourceVersion=listed, fieldSelector="metadata.name=a")
    with response:
        _label_patch(api, "a", "2")
        event = next(events)
    assert event["type"] == "MODIFIED"
    assert event["object"]["metadata"]["labels"] == {"v": "2"}


def test_watch_replays_events_after_an_old_version(api, make_pod):
    created = api.post(PODS, make_pod(name="a")).json()
    api.request("DELETE", f"{PODS}/a")
    since = int(created["metadata"]["resourceVersion"])
    response, events = _watch(api, resourceVersion=str(since), fieldSelector="metadata.name=a")
    with response:
        replayed = []
        for event in events:
            replayed.append(event)
            if event["type"] == "DELETED":
                break
    assert replayed[-1]["type"] == "DELETED"
    assert all(int(e["object"]["metadata"]["resourceVersion"]) > since for e in replayed)
    assert "ADDED" not in {e["type"] for e in replayed}


def test_watch_delete_event_is_delivered(api, make_pod):
    api.post(PODS, make_pod(name="a"))
    listed = api.get(PODS).json()["metadata"]["resourceVersion"]
    response, events = _watch(api, resourceVersion=listed, fieldSelector="metadata.name=a")
    with response:
        api.request("DELETE", f"{PODS}/a")
        seen = next(e for e in events if e["type"] == "DELETED")
    assert seen["object"]["metadata"]["name"] == "a"


def test_watch_label_selector_filters_events(api, make_pod):
    api.post(PODS, make_pod(name="a", labels={"app": "x"}))
    api.post(PODS, make_pod(name="b", labels={"app": "y"}))
    response, events = _watch(api, resourceVersion="0", labelSelector="app=y")
    with response:
        first = next(events)
    assert first["object"]["metadata"]["name"] == "b"


def test_too_old_resource_version_is_an_error_event_with_410(api, emulator, make_pod):
    emulator.store.set_history_limit(3)
    for name in ("a", "b", "c", "d"):
        api.post(PODS, make_pod(name=name))
    response, events = _watch(api, resourceVersion="1")
    with response:
        event = next(events)
    assert event["type"] == "ERROR"
    status = event["object"]
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"].startswith("too old resource version: 1 (")


def test_timeout_ends_the_watch_with_a_bookmark(api):
    rv = api.get(PODS).json()["metadata"]["resourceVersion"]
    response = api.get(
        PODS,
        params={"watch": "1", "timeoutSeconds": "0", "resourceVersion": rv, "allowWatchBookmarks": "true"},
    )
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    assert [e["type"] for e in lines] == ["BOOKMARK"]
    assert lines[0]["object"]["metadata"]["resourceVersion"] == rv


def test_timeout_without_bookmarks_ends_with_no_events(api):
    rv = api.get(PODS).json()["metadata"]["resourceVersion"]
    response = api.get(PODS, params={"watch": "true", "timeoutSeconds": "0", "resourceVersion": rv})
    assert (response.status_code, response.text) == (200, "")


def test_watch_ends_cleanly_when_the_server_stops(tmp_path, make_pod):
    from kdebug_emulator import Emulator
    from tests.fixtures.emulators import ApiClient

    emu = Emulator(workdir=tmp_path / "emu").start()
    try:
        api = ApiClient(emu)
        response, events = _watch(api, resourceVersion=api.get(PODS).json()["metadata"]["resourceVersion"])
        done = threading.Event()
        remaining: list = []

        def drain() -> None:
            remaining.extend(events)
            done.set()

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
    finally:
        emu.stop()
    assert done.wait(timeout=10)
    assert remaining == []


def test_streaming_list_sends_current_state_then_the_initial_events_end_bookmark(api, make_pod):
    api.post(PODS, make_pod(name="a"))
    response, events = _watch(
        api, sendInitialEvents="true", allowWatchBookmarks="true", resourceVersionMatch="NotOlderThan"
    )
    with response:
        first, second = next(events), next(events)
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "a")
    assert second["type"] == "BOOKMARK"
    assert second["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
