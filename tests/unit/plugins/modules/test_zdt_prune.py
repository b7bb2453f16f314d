"""zdt_prune: the newest releases stay, and never current, previous or one with programs."""

from __future__ import annotations

import os
import time

import pytest
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_host
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App
from ansible_collections.zerodowntime.web.plugins.modules import zdt_prune


@pytest.fixture
def root(tmp_path, monkeypatch):
    # Programs live in /etc/supervisor/conf.d on a host; none here.
    monkeypatch.setattr(App, "programs", lambda self: [])
    # The lock of an earlier holder's work lives in /var/lib/zerodowntime: not here.
    monkeypatch.setattr(zdt_host, "Lock", lambda app: type("NoLock", (), {"hold_work": lambda self: None})())
    for index, release in enumerate(["1.0-a", "2.0-b", "3.0-c", "4.0-d", "5.0-e"]):
        path = tmp_path / "app" / "releases" / release
        os.makedirs(path)
        (path / "release.json").write_text("{}")
        os.utime(path / "release.json", (time.time() - 100 + index, time.time() - 100 + index))
    os.makedirs(tmp_path / "app" / "releases" / "6.0-f")  # an interrupted deploy's leftover
    os.symlink("releases/1.0-a", tmp_path / "app" / "previous")
    os.symlink("releases/5.0-e", tmp_path / "app" / "current")
    return tmp_path / "app"


def test_keeps_the_newest_and_current_and_previous_and_removes_incomplete(run_module, root):
    done = run_module(zdt_prune.main, {"app_name": "shop", "app_root": str(root), "keep": 2})
    assert sorted(done.result["removed"]) == ["2.0-b", "3.0-c", "6.0-f"]
    assert sorted(os.listdir(root / "releases")) == ["1.0-a", "4.0-d", "5.0-e"]


def test_check_mode_names_them_and_removes_nothing(run_module, root):
    done = run_module(zdt_prune.main, {"app_name": "shop", "app_root": str(root), "keep": 2,
                                       "_ansible_check_mode": True})
    assert done.result["changed"] and len(os.listdir(root / "releases")) == 6


def test_a_removed_release_leaves_releases_at_once_and_is_deleted_in_the_background(run_module, root):
    leftover = root / ".zdt" / "trash" / "0.9-z.0123abcd"  # what an earlier run's rm did not finish
    os.makedirs(leftover / "venv")
    done = run_module(zdt_prune.main, {"app_name": "shop", "app_root": str(root), "keep": 2})
    assert sorted(done.result["removed"]) == ["2.0-b", "3.0-c", "6.0-f"]
    assert sorted(os.listdir(root / "releases")) == ["1.0-a", "4.0-d", "5.0-e"]
    deadline = time.monotonic() + 10
    while os.listdir(root / ".zdt" / "trash") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.listdir(root / ".zdt" / "trash") == []
