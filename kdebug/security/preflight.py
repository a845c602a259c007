"""One round of SelfSubjectAccessReviews before kdebug mutates anything.

The reviews (from kdebug.security.permissions) are sent concurrently, one thread each, so the round costs one
round trip. A denial fails fast with exactly what is missing. A cluster that does not answer
(the review API is absent: 404; creating reviews is forbidden: 403; or any other error) is not a
failure: the result says "unknown, proceeding" and the real request decides.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kdebug.errors import KdebugError
from kdebug.kube import paths
from kdebug.security.permissions import (
    Permission,
    access_review_body,
    allowed_by_rules,
    complete_resource_rules,
    missing_permissions,
    missing_permissions_error,
    required_permissions,
    review_allowed,
    rules_allow,
    rules_review_body,
    unanswered_permissions,
)

if TYPE_CHECKING:
    from kdebug.kube.api import KubeApi

MAX_PARALLEL_REVIEWS = 8
# Checks on one object: the review names the pod so rules limited by resourceNames are honoured.
POD_SCOPED_VERBS = frozenset({"get", "patch", "update"})

ALLOWED = "allowed"
UNKNOWN = "unknown"
PARTLY_UNKNOWN = "partly-unknown"


@dataclass(frozen=True)
class PreflightResult:
    """What the access reviews said; `state` is allowed, unknown (none answered) or partly-unknown."""

    operation: str
    namespace: str
    permissions: tuple[Permission, ...]
    answers: tuple[dict | None, ...]

    @property
    def unanswered(self) -> list[Permission]:
        return unanswered_permissions(self.permissions, self.answers)

    @property
    def state(self) -> str:
        unanswered = self.unanswered
        if not unanswered:
            return ALLOWED
        return UNKNOWN if len(unanswered) == len(self.permissions) else PARTLY_UNKNOWN

    @property
    def summary(self) -> str:
        """One line for stderr and the session record."""
        if self.state == ALLOWED:
            return f"permissions checked: allowed to {self.operation} in namespace {self.namespace}"
        if self.state == UNKNOWN:
            return "permissions unknown (the cluster does not answer access reviews), proceeding"
        names = ", ".join(str(p) for p in self.unanswered)
        return f"permissions partly unknown ({names} not answered), proceeding"


def name_pod_scoped(permissions: Sequence[Permission], pod_name: str | None) -> list[Permission]:
    """The permissions with the target pod's name on those that act on that one pod."""
    if not pod_name:
        return list(permissions)
    return [
        dataclasses.replace(p, name=pod_name)
        if p.resource == "pods" and p.namespace and (p.subresource or p.verb in POD_SCOPED_VERBS)
        else p
        for p in permissions
    ]


def ask_one(client: KubeApi, body: dict) -> dict | None:
    """The server's answer to one review, or None when it gave none we can read."""
    try:
        answer = client.request("POST", paths.SELF_SUBJECT_ACCESS_REVIEW, body=body)
    except KdebugError:
        return None
    return answer if review_allowed(answer) is not None else None


def send_access_reviews(client: KubeApi, permissions: Sequence[Permission]) -> list[dict | None]:
    """All reviews at once (a thread each, at most MAX_PARALLEL_REVIEWS at a time), answers in the order
    of `permissions`. Plain threads: concurrent.futures would add its import to every start-up."""
    bodies = [access_review_body(p) for p in permissions]
    answers: list[dict | None] = [None] * len(bodies)
    failures: list[BaseException] = []

    def ask(index: int) -> None:
        try:
            answers[index] = ask_one(client, bodies[index])
        except BaseException as exc:  # handed to the caller's thread below
            failures.append(exc)

    for start in range(0, len(bodies), MAX_PARALLEL_REVIEWS):
        batch = [
            threading.Thread(target=ask, args=(index,), daemon=True)
            for index in range(start, min(start + MAX_PARALLEL_REVIEWS, len(bodies)))
        ]
        for thread in batch:
            thread.start()
        for thread in batch:
            thread.join()
        if failures:
            raise failures[0]
    return answers


def run_preflight(
    client: KubeApi,
    namespace: str,
    operation: str,
    *,
    pod_name: str | None = None,
    username: str | None = None,
) -> PreflightResult:
    """Ask for everything `operation` needs; raise PermissionDeniedError naming what is missing."""
    return check_preflight(ask_preflight(client, namespace, operation, pod_name=pod_name), username)


def ask_preflight(
    client: KubeApi, namespace: str, operation: str, *, pod_name: str | None = None
) -> PreflightResult:
    """The answers to everything `operation` needs, judged later by check_preflight.

    One SelfSubjectRulesReview for the namespace first: what its rules grant needs no question of its
    own. Whatever it does not grant (or all, when it is unanswered or incomplete) is asked with
    SelfSubjectAccessReviews, which stay the word on a denial.
    """
    permissions = name_pod_scoped(required_permissions(operation, namespace), pod_name)
    rules = namespace_rules(client, namespace)
    answers: list[dict | None] = [
        allowed_by_rules() if rules is not None and p.namespace and rules_allow(rules, p) else None
        for p in permissions
    ]
    open_questions = [index for index, answer in enumerate(answers) if answer is None]
    asked = send_access_reviews(client, [permissions[index] for index in open_questions])
    for index, answer in zip(open_questions, asked, strict=True):
        answers[index] = answer
    return PreflightResult(operation, namespace, tuple(permissions), tuple(answers))


def namespace_rules(client: KubeApi, namespace: str) -> list[dict] | None:
    """The caller's resource rules in `namespace`, or None when the server gives no complete list."""
    try:
        answer = client.request("POST", paths.SELF_SUBJECT_RULES_REVIEW, body=rules_review_body(namespace))
    except KdebugError:  # no such API (404), not allowed (403), ...: the access reviews decide
        return None
    return complete_resource_rules(answer)


def check_preflight(result: PreflightResult, username: str | None = None) -> PreflightResult:
    """`result`, or PermissionDeniedError naming what is missing (and who lacks it)."""
    missing = missing_permissions(result.permissions, result.answers)
    if missing:
        raise missing_permissions_error(missing, username)
    return result
