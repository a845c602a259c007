"""kube.watch.watch_object: the one list-then-watch loop, against the emulator and, for the events the
emulator cannot send on demand (other ERRORs, a closed watch, bookmarks), a small local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from kdebug.errors import ApiError, ExitCode, KdebugError, StartFailedError
from kdebug.kube import client as kube
from kdebug.kube import paths
from kdebug.kube.watch import EMPTY_WATCH_PAUSE_S, deadline_in, watch_object
from tests.fixtures.pods import build_pod

PODS = paths.pods_path("default")


def pod(name: str, version: str, phase: str = "Pending") -> dict:
    return build_pod(typed=False, name=name, metadata_extra={"resourceVersion": version}, phase=phase)


def running(obj: dict) -> dict | None:
    return obj if (obj.get("status") or {}).get("phase") == "Running" else None


def gone() -> KdebugError:
    return StartFailedError("pod was deleted")


# -- against the emulator ------------------------------------------------------------------------


def test_410_gone_lists_again_and_goes_on_from_the_new_version(emulator, tmp_path) -> None:
    client = kube.connect(str(emulator.write_kubeconfig(tmp_path / "kubeconfig")))
    emulator.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "default"}})
    stale = client.get(paths.pod_path("default", "a"))
    emulator.store.set_history_limit(2)
    for name in ("b", "c", "d"):  # push the stale version out of the watch history
        emulator.apply(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}}
        )
    looks: list[dict] = []
    start = len(emulator.requests)

    def second_look(obj: dict) -> dict | None:
        looks.append(obj)
        return obj if len(looks) == 2 else None

    found = watch_object(client, PODS, "a", second_look, deadline_in(10), deleted=gone, start=stale)

    assert found is not None and found["metadata"]["name"] == "a"
    asked = [(r["method"], "watch=true" in r["query"]) for r in emulator.requests[start:]]
    assert asked == [("GET", True), ("GET", False)]  # the watch from the stale version, then the list


def test_deadline_returns_none(emulator, tmp_path) -> None:
    client = kube.connect(str(emulator.write_kubeconfig(tmp_path / "kubeconfig")))
    emulator.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "default"}})

    assert watch_object(client, PODS, "a", lambda obj: None, lambda: 0.0, deleted=gone) is None


def test_a_missing_object_is_the_callers_error(emulator, tmp_path) -> None:
    client = kube.connect(str(emulator.write_kubeconfig(tmp_path / "kubeconfig")))

    with pytest.raises(StartFailedError, match="deleted"):
        watch_object(client, PODS, "nope", running, deadline_in(5), deleted=gone)


# -- a scripted server over a real socket --------------------------------------------------------


class ScriptedApi:
    """Answers the pod list with `listing` and each watch with the next script of events, then closes."""

    def __init__(self, listing: dict, watches: list[list[dict]]):
        self.listing, self.watches = listing, list(watches)
        self.watch_queries: list[dict[str, list[str]]] = []
        self.lists = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                if query.get("watch") == ["true"]:
                    api.watch_queries.append(query)
                    events = api.watches.pop(0) if api.watches else []
                    body = b"".join(json.dumps(e).encode() + b"\n" for e in events)
                else:
                    api.lists += 1
                    body = json.dumps(api.listing).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def client(self, tmp_path: Path) -> kube.KubeClient:
        host, port = self.server.server_address[:2]
        config = tmp_path / "kubeconfig"
        config.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": f"http://{host}:{port}"}}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [
                        {"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "default"}}
                    ],
                    "current-context": "x",
                }
            )
        )
        return kube.connect(str(config))


@pytest.fixture
def scripted() -> Iterator[type[ScriptedApi]]:
    started: list[ScriptedApi] = []

    def start(listing: dict, watches: list[list[dict]]) -> ScriptedApi:
        api = ScriptedApi(listing, watches)
        api.thread.start()
        started.append(api)
        return api

    yield start  # type: ignore[misc]
    for api in started:
        api.server.shutdown()
        api.server.server_close()


def listing_of(*items: dict, version: str = "5") -> dict:
    return {"kind": "PodList", "metadata": {"resourceVersion": version}, "items": list(items)}


def test_a_closed_watch_is_watched_again_from_the_last_bookmark(scripted, tmp_path) -> None:
    bookmark = {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "7"}}}
    done = {"type": "MODIFIED", "object": pod("a", "8", "Running")}
    api = scripted(listing_of(pod("a", "5")), [[bookmark], [done]])

    found = watch_object(api.client(tmp_path), PODS, "a", running, deadline_in(10), deleted=gone)

    assert found == done["object"]
    assert [q["resourceVersion"] for q in api.watch_queries] == [["5"], ["7"]]
    assert api.lists == 1  # a closed watch is not a reason to list again


def test_a_410_event_over_a_socket_lists_again(scripted, tmp_path) -> None:
    expired = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    done = {"type": "MODIFIED", "object": pod("a", "9", "Running")}
    api = scripted(listing_of(pod("a", "5")), [[expired], [done]])

    found = watch_object(api.client(tmp_path), PODS, "a", running, deadline_in(10), deleted=gone)

    assert (found, api.lists) == (done["object"], 2)


def test_another_error_event_is_an_api_error(scripted, tmp_path) -> None:
    failed = {"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "etcd is unhappy"}}
    api = scripted(listing_of(pod("a", "5")), [[failed]])

    with pytest.raises(ApiError, match="watching a failed: etcd is unhappy") as info:
        watch_object(api.client(tmp_path), PODS, "a", running, deadline_in(10), deleted=gone)
    assert info.value.exit_code == ExitCode.API_ERROR


def test_watches_the_server_ends_at_once_are_paced(scripted, tmp_path) -> None:
    done = {"type": "MODIFIED", "object": pod("a", "8", "Running")}
    api = scripted(listing_of(pod("a", "5")), [[], [], [done]])
    pauses: list[float] = []

    found = watch_object(
        api.client(tmp_path), PODS, "a", running, deadline_in(10), deleted=gone, sleep=pauses.append
    )

    assert found == done["object"]
    assert pauses == [EMPTY_WATCH_PAUSE_S, EMPTY_WATCH_PAUSE_S]  # one pause per silent watch, no more


def test_a_deleted_event_is_the_callers_error(scripted, tmp_path) -> None:
    api = scripted(listing_of(pod("a", "5")), [[{"type": "DELETED", "object": pod("a", "6")}]])

    with pytest.raises(StartFailedError, match="deleted"):
        watch_object(api.client(tmp_path), PODS, "a", running, deadline_in(10), deleted=gone)


def test_the_deadline_ends_a_watch_that_brings_nothing_useful(scripted, tmp_path) -> None:
    api = scripted(listing_of(pod("a", "5")), [[{"type": "MODIFIED", "object": pod("a", "6")}]])
    left = iter([10.0, 0.0])  # time for one watch; gone after its first event

    assert watch_object(api.client(tmp_path), PODS, "a", running, lambda: next(left), deleted=gone) is None
    assert len(api.watch_queries) == 1
