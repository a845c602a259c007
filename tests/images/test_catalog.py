"""The shipped catalog loads; user config sections are validated with one-line errors."""

from __future__ import annotations

from typing import Any

import pytest

from kdebug.errors import UsageError
from kdebug.images.catalog import load_catalog, shipped_catalog_path


def test_shipped_catalog_pins_busybox() -> None:
    assert load_catalog({}).busybox_image == "docker.io/library/busybox:1.36.1"


def test_shipped_catalog_file_is_where_the_package_expects_it() -> None:
    assert shipped_catalog_path().is_file()


def test_user_families_come_first() -> None:
    config = {"catalog": {"families": [{"name": "mine", "match": {"kind": "scratch"}, "image": "x/y:1"}]}}
    assert load_catalog(config).families[0].name == "mine"


def test_registry_settings_are_read() -> None:
    settings = load_catalog(
        {"registry": {"insecure": ["reg.lan:5000"], "timeout": 2, "byte_budget": 1024}}
    ).registry
    assert (settings.insecure, settings.timeout, settings.byte_budget) == (("reg.lan:5000",), 2.0, 1024)


def test_no_allowlist_is_none_and_an_empty_one_is_empty() -> None:
    assert (load_catalog({}).allowed_images, load_catalog({"allowed_images": []}).allowed_images) == (
        None,
        (),
    )


@pytest.mark.parametrize(
    ("config", "message_part"),
    [
        ({"catalog": []}, "catalog: expected a mapping"),
        ({"catalog": {"families": [{"match": {}}]}}, "needs a name"),
        ({"catalog": {"families": [{"name": "x", "strategy": "magic"}]}}, "strategy must be one of"),
        ({"catalog": {"families": [{"name": "x", "strategy": "tag"}]}}, "needs `tag`"),
        ({"catalog": {"busybox": {"image": "Not A Ref"}}}, "invalid image reference"),
        ({"allowed_images": [42]}, "allowed_images"),
        ({"registry": {"timeout": "soon"}}, "registry.timeout must be a number"),
        ({"mirrors": [{"from": "gcr.io/distroless"}]}, "needs both"),
    ],
    ids=[
        "catalog not a mapping",
        "family without name",
        "unknown strategy",
        "tag strategy without tag",
        "bad busybox image",
        "bad allowlist entry",
        "bad timeout",
        "mirror without target",
    ],
)
def test_bad_config_is_a_one_line_usage_error(config: dict[str, Any], message_part: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_catalog(config)
    assert message_part in caught.value.message and "\n" not in caught.value.message
