# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The fleet's outcome from each host's deploy_outcome (plugins/filter/zdt_fleet.py)."""
from __future__ import annotations

from ansible_collections.zerodowntime.web.plugins.filter.zdt_fleet import fleet

HOSTS = ["a", "b", "c"]


def outcome(result: str, batch: list[str], release: str = "2-x", from_release: str = "1-x", **more) -> dict:
    return {"deploy_outcome": {"result": result, "release": release, "from_release": from_release,
                               "batch": batch, "started": "1700000000.0", **more}}


def test_every_host_switched_is_a_success_in_one_batch_per_host():
    hostvars = {h: outcome("success", [h]) for h in HOSTS}
    got = fleet(HOSTS, hostvars, 0)
    assert got["result"] == "success" and not got["stopped"] and got["rollback"] == {}
    assert got["batches"] == [["a"], ["b"], ["c"]] and got["message"] == ""


def test_the_second_host_failing_rolls_back_the_first_and_skips_the_third():
    hostvars = {"a": outcome("success", ["a"]),
                "b": outcome("failed", ["b"], step="preview", reason="GET /x answered 404"),
                "c": {"deploy_outcome": {"result": "skipped", "batch": ["c"]}}}
    got = fleet(HOSTS, hostvars, 0)
    assert got["stopped"] and got["result"] == "rolled_back"
    assert got["rollback"] == {"a": "1-x"} and got["failed"] == ["b"] and got["skipped"] == ["c"]
    assert 'b failed at step "preview": GET /x answered 404' in got["message"]
    assert "a (to 1-x)" in got["message"] and "Not deployed: c" in got["message"]
    assert got["entry"]["rolled_back"] == ["a"] and got["entry"]["failed"]["b"]["step"] == "preview"


def test_a_first_deploy_or_a_noop_host_is_never_rolled_back():
    hostvars = {"a": outcome("success", HOSTS, from_release=""), "b": outcome("noop", HOSTS, release="1-x"),
                "c": outcome("rolled_back", HOSTS, step="watch", reason="5xx")}
    got = fleet(HOSTS, hostvars, 0)
    assert got["stopped"] and got["rollback"] == {} and got["result"] == "failed"


def test_failures_within_the_allowed_share_let_the_others_go_on():
    hostvars = {"a": outcome("success", ["a"]), "b": outcome("failed", ["b"], step="start", reason="x"),
                "c": outcome("success", ["c"])}
    got = fleet(HOSTS, hostvars, 50)
    assert not got["stopped"] and got["rollback"] == {} and got["result"] == "partial"
    assert "within deploy_fleet_max_fail_percentage=50" in got["message"]


def test_hosts_not_yet_deployed_are_pending_and_stop_nothing():
    got = fleet(HOSTS, {"a": outcome("success", ["a"]), "b": {}, "c": {}}, 0)
    assert got["pending"] == ["b", "c"] and not got["stopped"]


def test_the_canary_numbers_reach_the_history_line():
    hostvars = {h: outcome("success", [h]) for h in HOSTS}
    hostvars["a"]["deploy_outcome"]["canary"] = {"requests": 40, "status_5xx": 0, "lb_errors": 0}
    assert fleet(HOSTS, hostvars)["entry"]["canary"] == {"a": {"requests": 40, "status_5xx": 0, "lb_errors": 0}}
