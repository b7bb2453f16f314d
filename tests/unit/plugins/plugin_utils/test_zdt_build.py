"""The build's view of a target: its key and the tags its wheels may carry."""

from __future__ import annotations

import pytest
from ansible_collections.zerodowntime.web.plugins.plugin_utils.zdt_build import (
    _from_store,
    _to_store,
    BuildError,
    _tags,
    elf_machine,
    find_uv,
    target_key,
    uv_binary,
)

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


def _elf(machine: int, little: bool = True) -> bytes:
    return b"\x7fELF" + bytes([2, 1 if little else 2]) + bytes(12) + machine.to_bytes(2, "little" if little else "big")


@pytest.mark.parametrize("head,machine", [
    (_elf(62), "x86_64"), (_elf(183), "aarch64"), (_elf(22, little=False), "s390x"),
    (b"\xcf\xfa\xed\xfe" + bytes(16), ""),  # a macOS (Mach-O) program
    (b"#!/bin/sh\necho uv 1.0\n", ""), (b"", ""),
])
def test_the_machine_of_a_program_is_read_from_its_elf_header(tmp_path, head, machine):
    (tmp_path / "prog").write_bytes(head + bytes(64))
    assert elf_machine(str(tmp_path / "prog")) == (machine if head else "")


def test_uv_is_found_beside_the_builds_python_first_with_its_version_and_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    assert uv_binary(str(python)) == {}
    fake = python.parent / "uv"
    fake.write_text("#!/bin/sh\necho 'uv 0.13.9 (x86_64-unknown-linux-gnu)'\n")
    fake.chmod(0o755)
    assert uv_binary(str(python)) == {"path": str(fake), "version": "0.13.9", "machine": ""}  # a script: no ELF
    assert find_uv(str(python)) == str(fake)


def test_the_real_uv_of_this_controller_is_a_linux_program_of_this_machine():
    import platform
    import shutil
    import sys

    found = uv_binary(sys.executable)
    if not found and not shutil.which("uv"):
        pytest.skip("no uv on this controller")
    assert found["machine"] == platform.machine() and found["version"][0].isdigit()


def test_a_downloaded_wheel_is_kept_and_a_pinned_requirement_is_served_from_the_store(tmp_path):
    store, first, second = tmp_path / "store", tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "Django-5.2.19-py3-none-any.whl").write_bytes(b"django")
    (first / "sqlparse-0.6.1-py3-none-any.whl").write_bytes(b"sqlparse")
    assert not _from_store(store, "django==5.2.19", second)  # nothing kept yet: downloaded
    _to_store(store, "django==5.2.19", first)
    assert sorted(p.name for p in store.iterdir()) == ["Django-5.2.19-py3-none-any.whl"]  # that one only
    assert _from_store(store, "Django[argon2]==5.2.19", second)
    assert (second / "Django-5.2.19-py3-none-any.whl").read_bytes() == b"django"
    assert not _from_store(store, "django==5.2.20", second)  # another version: downloaded
    assert not _from_store(store, "django>=5", second)  # not pinned: never from the store
