"""kdebug.yamlfiles: libyaml when present, one parse per file version, callers cannot change the cache."""

from __future__ import annotations

import os

import pytest
import yaml

from kdebug.yamlfiles import load_file, safe_load

DOC = "a: 1\nb: [x, 'y', 2.5, null, true]\nc: {d: 2020-01-01}\n"


def test_safe_load_builds_what_pyyamls_safe_loader_builds():
    assert safe_load(DOC) == yaml.load(DOC, Loader=yaml.SafeLoader)


def test_safe_load_refuses_python_objects():
    with pytest.raises(yaml.YAMLError):
        safe_load("!!python/object/apply:os.system ['true']")


def test_bad_yaml_error_carries_its_line():
    with pytest.raises(yaml.YAMLError) as caught:
        safe_load("a: 1\nb: [unclosed\n")
    assert caught.value.problem_mark is not None


def test_a_changed_file_is_read_again(tmp_path):
    path = tmp_path / "config"
    path.write_text("value: 1\n")
    assert load_file(path) == {"value": 1}
    path.write_text("value: 22\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert load_file(path) == {"value": 22}


def test_changing_a_returned_document_does_not_change_the_next_one(tmp_path):
    path = tmp_path / "config"
    path.write_text("items: [1, 2]\n")
    load_file(path)["items"].append(3)
    assert load_file(path) == {"items": [1, 2]}


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_file(tmp_path / "absent")
