"""The nginx binary upgrade's pure parts: package versions, apt's cache names and its
simulation, logs since an offset, which binary a process runs, the apps on a host."""

from __future__ import annotations

import os
import shutil

from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_nginx_binary as nb
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import apps_on_host

SIMULATION = """NOTE: This is only a simulation!
Reading package lists...
The following packages will be DOWNGRADED:
  nginx nginx-common
Inst nginx [1.22.1-9+deb12u11] (1.22.1-9+deb12u9 Debian:12.15/oldstable [amd64]) []
Inst nginx-common [1.22.1-9+deb12u11] (1.22.1-9+deb12u9 Debian:12.15/oldstable [all])
Inst libssl3 (3.0.17-1~deb12u3 Debian-Security:12/oldstable-security [amd64])
Conf nginx (1.22.1-9+deb12u9 Debian:12.15/oldstable [amd64])
"""


def test_debian_versions_are_told_from_anything_else():
    for good in ("1.22.1-9+deb12u11", "1:1.26.3-3", "1.27.4~rc1"):
        assert nb.valid_version(good), good
    for bad in ("", "nginx", "1.22 1", "1.22;rm -rf /", None, 1.22):
        assert not nb.valid_version(bad), bad


def test_apt_cache_names_write_the_epoch_as_apt_does():
    assert nb.deb_name("nginx", "1.22.1-9+deb12u9", "amd64") == "nginx_1.22.1-9+deb12u9_amd64.deb"
    assert nb.deb_name("nginx-common", "1:1.26.3-3", "all") == "nginx-common_1%3a1.26.3-3_all.deb"


def test_the_simulation_names_every_package_apt_would_change():
    assert nb.parse_simulation(SIMULATION) == {"nginx": "1.22.1-9+deb12u9", "nginx-common": "1.22.1-9+deb12u9",
                                               "libssl3": "3.0.17-1~deb12u3"}


def test_only_the_lines_written_after_the_offset_are_read(tmp_path):
    log = tmp_path / "error.log"
    log.write_text("old line\n")
    offset = log.stat().st_size
    with log.open("a") as handle:
        handle.write("2026/11/23 [emerg] 12#12: bind() failed\n\n")
    assert nb.log_since(str(log), offset) == ["2026/11/23 [emerg] 12#12: bind() failed"]
    assert nb.log_since(str(tmp_path / "missing"), 0) == []


def test_a_process_runs_a_file_when_it_is_the_same_file_or_the_same_bytes(tmp_path):
    python = os.path.realpath(f"/proc/{os.getpid()}/exe")
    assert nb.runs_file(os.getpid(), python)
    copy = tmp_path / "copy"
    shutil.copyfile(python, copy)  # what apt unpacks over a binary that already runs
    assert nb.runs_file(os.getpid(), str(copy))
    other = tmp_path / "other"
    other.write_bytes(b"#!/bin/sh\n")
    assert not nb.runs_file(os.getpid(), str(other))
    assert not nb.runs_file(os.getpid(), str(tmp_path / "missing"))


def test_the_apps_on_a_host_are_its_state_directories_with_app_names(tmp_path):
    for name in ("shop", "shop-admin", "Not_An_App", "nginx-upgrade.lock"):
        (tmp_path / name).mkdir() if name != "nginx-upgrade.lock" else (tmp_path / name).touch()
    assert apps_on_host(str(tmp_path)) == ["shop", "shop-admin"]
    assert apps_on_host(str(tmp_path / "missing")) == []


def test_wait_returns_the_first_true_value_or_the_last_one():
    values = iter([0, 0, 7, 8])
    assert nb.wait(lambda: next(values), 5, 0) == 7
    assert nb.wait(lambda: 0, 0.05, 0.01) == 0
