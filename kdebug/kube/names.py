"""PURE: the names kdebug puts into API paths, checked as the API server checks them (DNS-1123).

Paths are percent-encoded anyway (kdebug.kube.paths), so no name can change a request; checking here
refuses a bad name before any request, with one usage line naming the option and the rule, instead
of sending it for the server to refuse. Namespaces and container names are DNS-1123 labels; pod and
workload names DNS-1123 subdomains. Label selectors have their own grammar, left to the server;
only control characters (a newline, NUL, escapes) are refused in them.
"""

from __future__ import annotations

import re

from kdebug.console.sanitize import terminal_safe
from kdebug.errors import UsageError

LABEL_MAX = 63
SUBDOMAIN_MAX = 253
SHOWN_MAX = 80  # a longer value is cut in the message: the line stays one readable line

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

LABEL_RULE = (
    f"a DNS-1123 label (lowercase letters, digits and '-', at most {LABEL_MAX}, "
    "starting and ending with a letter or digit)"
)
SUBDOMAIN_RULE = (
    f"a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', at most {SUBDOMAIN_MAX}, "
    "starting and ending with a letter or digit)"
)


def is_dns1123_label(value: str) -> bool:
    # fullmatch: `$` would accept a trailing newline
    return len(value) <= LABEL_MAX and _LABEL.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= SUBDOMAIN_MAX and _SUBDOMAIN.fullmatch(value) is not None


def shown(value: str) -> str:
    """`value` quoted for a one-line message: control characters escaped, a long value cut."""
    text = value if len(value) <= SHOWN_MAX else f"{value[:SHOWN_MAX]}...({len(value)} characters)"
    return "'" + terminal_safe(text, one_line=True) + "'"


def check_namespace(value: str, option: str = "-n") -> str:
    if not is_dns1123_label(value):
        raise UsageError(f"{option} {shown(value)}: a namespace must be {LABEL_RULE}")
    return value


def check_container(value: str, option: str = "-c") -> str:
    if not is_dns1123_label(value):
        raise UsageError(f"{option} {shown(value)}: a container name must be {LABEL_RULE}")
    return value


def check_object_name(value: str, kind: str, option: str = "TARGET", text: str | None = None) -> str:
    """A pod's or workload's name; `text` is what the user wrote (`deploy/shop`), shown in the message."""
    if not is_dns1123_subdomain(value):
        raise UsageError(
            f"{option} {shown(value if text is None else text)}: a {kind} name must be {SUBDOMAIN_RULE}"
        )
    return value


def check_selector(value: str, option: str = "-l") -> str:
    if _CONTROL.search(value):
        raise UsageError(f"{option} {shown(value)}: a label selector must not contain control characters")
    return value
