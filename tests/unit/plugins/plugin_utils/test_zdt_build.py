"""The build's view of a target: its key and the tags its wheels may carry."""

from __future__ import annotations

import pytest
from ansible_collections.zerodowntime.web.plugins.plugin_utils.zdt_build import BuildError, _tags, target_key

DEBIAN_12 = {"python": "3.11.2", "implementation": "cpython", "machine": "x86_64", "glibc": "2.36"}
DEBIAN_13 = {"python": "3.13.5", "implementation": "cpython", "machine": "x86_64", "glibc": "2.41"}


def test_a_target_is_named_by_its_exact_python_machine_and_glibc():
    assert target_key(DEBIAN_12) == "cp3.11.2-x86_64-glibc2.36"
    assert target_key(DEBIAN_13) != target_key(dict(DEBIAN_13, python="3.13.6"))


def test_wheels_for_any_older_manylinux_fit_and_uv_resolves_for_the_newest_it_names():
    version, abi, platforms, uv_platform = _tags(DEBIAN_13)
    assert (version, abi, uv_platform) == ("3.13", "cp313", "x86_64-manylinux_2_40")
    assert platforms[0] == "manylinux_2_41_x86_64" and "manylinux_2_17_x86_64" in platforms
    assert "manylinux2014_x86_64" in platforms and "manylinux_2_42_x86_64" not in platforms
    assert _tags(DEBIAN_12)[3] == "x86_64-manylinux_2_36"


def test_a_musl_or_other_interpreter_is_refused_clearly():
    with pytest.raises(BuildError, match="only CPython on glibc Linux"):
        _tags(dict(DEBIAN_12, glibc=""))
    with pytest.raises(BuildError, match="only CPython"):
        _tags(dict(DEBIAN_12, implementation="pypy"))
