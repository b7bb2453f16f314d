"""zdt_current: current and previous point where they should, atomically, and only at complete releases."""

from __future__ import annotations

import os

import pytest
from ansible_collections.zerodowntime.web.plugins.modules import zdt_current


@pytest.fixture
def root(tmp_path):
    for release in ("1.0-aaaa", "2.0-bbbb"):
        os.makedirs(tmp_path / "releases" / release)
        (tmp_path / "releases" / release / "release.json").write_text("{}")
    os.makedirs(tmp_path / "releases" / "3.0-cccc")  # incomplete: no manifest
    return tmp_path


def args(root, release: str, **more) -> dict:
    return {"app_name": "shop", "app_root": str(root), "release": release, **more}


def test_a_first_activation_points_current_and_no_previous(run_module, root):
    done = run_module(zdt_current.main, args(root, "1.0-aaaa"))
    assert not done.failed and done.result["changed"]
    assert os.readlink(root / "current") == "releases/1.0-aaaa" and not os.path.lexists(root / "previous")


def test_the_next_one_moves_current_to_previous_and_again_changes_nothing(run_module, root):
    run_module(zdt_current.main, args(root, "1.0-aaaa"))
    done = run_module(zdt_current.main, args(root, "2.0-bbbb"))
    assert done.result["before"] == {"current": "1.0-aaaa", "previous": ""}
    assert os.readlink(root / "current") == "releases/2.0-bbbb" and os.readlink(root / "previous") == "releases/1.0-aaaa"
    assert not run_module(zdt_current.main, args(root, "2.0-bbbb")).result["changed"]


def test_a_rescue_puts_both_links_back_as_they_were(run_module, root):
    run_module(zdt_current.main, args(root, "1.0-aaaa"))
    run_module(zdt_current.main, args(root, "2.0-bbbb"))
    run_module(zdt_current.main, args(root, "1.0-aaaa", previous=""))
    assert os.readlink(root / "current") == "releases/1.0-aaaa" and not os.path.lexists(root / "previous")


def test_an_incomplete_release_is_refused_and_nothing_changes(run_module, root):
    run_module(zdt_current.main, args(root, "1.0-aaaa"))
    done = run_module(zdt_current.main, args(root, "3.0-cccc"))
    assert done.failed and "not a complete release" in done.result["msg"]
    assert os.readlink(root / "current") == "releases/1.0-aaaa"


def test_check_mode_reports_the_change_with_its_diff_and_changes_nothing(run_module, root):
    done = run_module(zdt_current.main, args(root, "1.0-aaaa", _ansible_check_mode=True, _ansible_diff=True))
    assert done.result["changed"] and "current -> 1.0-aaaa" in done.result["diff"]["after"]
    assert not os.path.lexists(root / "current")


def test_a_bad_release_id_is_refused(run_module, root):
    done = run_module(zdt_current.main, args(root, "../../etc"))
    assert done.failed and "invalid release id" in done.result["msg"]
