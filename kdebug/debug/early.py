"""The session's requests that do not depend on the pod, sent before its lookup so their round trips
overlap it: who we are (SelfSubjectReview), then, when TARGET names the pod, the permission reviews, in
order on one connection; and the namespace (its Pod Security labels, read before the PATCH) on another.
"""

from __future__ import annotations

from typing import Any

from kdebug.debug.record import identity_fields
from kdebug.debug.request import AttachRequest
from kdebug.errors import KdebugError
from kdebug.kube import paths
from kdebug.kube.api import KubeApi
from kdebug.kube.background import Pending
from kdebug.kube.targets import parse_target
from kdebug.security.preflight import PreflightResult, ask_preflight, check_preflight, run_preflight


def pod_named_by(request: AttachRequest) -> str | None:
    """The pod's name when TARGET names a pod (known before any lookup), else None."""
    if request.selector or not request.target:
        return None
    try:
        ref = parse_target(request.target)
    except KdebugError:  # resolve_target reports it
        return None
    return ref.name if ref.kind == "pod" else None


class EarlyRequests:
    """Started on construction; `identity()` and `preflight(pod)` wait for their answers."""

    def __init__(self, client: KubeApi, request: AttachRequest, namespace: str, operation: str):
        self.client, self.namespace, self.operation = client, namespace, operation
        self.named_pod = pod_named_by(request)

        def identity_and_reviews() -> tuple[dict[str, Any], PreflightResult | None]:
            identity = identity_fields(client, request.kubeconfig, request.context)
            if not self.named_pod:
                return identity, None
            return identity, ask_preflight(client, namespace, operation, pod_name=self.named_pod)

        self._pending = Pending(identity_and_reviews)
        client.prefetch(paths.namespace_path(namespace))

    def identity(self) -> dict[str, Any]:
        return self._pending.result()[0]

    def preflight(self, pod_name: str, username: str | None) -> PreflightResult:
        """The reviews' verdict for `pod_name` (asked again when TARGET did not name that pod)."""
        reviews = self._pending.result()[1]
        if reviews is not None and self.named_pod == pod_name:
            return check_preflight(reviews, username)
        return run_preflight(
            self.client, self.namespace, self.operation, pod_name=pod_name, username=username
        )
