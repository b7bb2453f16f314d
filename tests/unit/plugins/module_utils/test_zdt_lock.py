"""The lock: taken with a token, released only by it; dead holders recovered, live ones never broken."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_lock
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_lock import Lock, LockHeld

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lock's state directory is root's")


@pytest.fixture
def lock(tmp_path):
    return Lock(App("shop", str(tmp_path / "shop"), state_dir=str(tmp_path / "state")))


def owner(path) -> dict:
    with open(os.path.join(path, "owner.json"), encoding="utf-8") as handle:
        return json.load(handle)


def test_only_the_token_that_took_it_releases_it(lock):
    taken = lock.take({"action": "deploy"})
    assert not lock.release("someone-else")
    assert lock.holder()["token"] == taken["token"]
    assert lock.release(taken["token"])
    assert lock.holder() is None


def test_a_second_taker_is_refused_naming_the_holder(lock):
    lock.take({"action": "deploy", "release": "1.0-abc", "user": "ann", "controller": "laptop"})
    with pytest.raises(LockHeld) as held:
        lock.take({"action": "deploy"})
    assert held.value.state == "unknown"
    assert "deploy of release 1.0-abc by ann@laptop" in held.value.describe("shop")
    assert "deploy_break_lock=true" in held.value.describe("shop")


def test_a_holder_from_a_previous_boot_is_recovered(lock):
    taken = lock.take({"action": "deploy"})
    record = {**owner(lock.dir), "boot": "another-boot"}
    with open(os.path.join(lock.dir, "owner.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    again = lock.take({"action": "deploy"})
    assert [r["token"] for r in again["recovered"]] == [taken["token"]]
    assert "restarted" in again["recovered"][0]["why"]


def test_a_host_holder_whose_process_is_gone_is_recovered(lock):
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock.take({"action": "retire"})
    record = {**owner(lock.dir), "pid": gone.pid, "pid_start": "1"}
    with open(os.path.join(lock.dir, "owner.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    assert lock.take({"action": "deploy"})["recovered"][0]["why"].startswith("its process")


def test_a_live_host_holder_is_never_broken(lock):
    lock.take({"action": "retire"}, host_process=True)  # this very process holds it
    with pytest.raises(LockHeld) as held:
        lock.take({"action": "deploy"}, break_lock=True, wait=0.2)
    assert held.value.state == "alive" and held.value.refused_break
    assert "deploy_break_lock was refused" in held.value.describe("shop")


def test_a_holder_this_host_cannot_check_is_broken_only_on_request(lock):
    first = lock.take({"action": "deploy"})
    again = lock.take({"action": "deploy"}, break_lock=True)
    assert again["broken"]["token"] == first["token"]


def test_a_deploy_whose_controller_died_is_recovered_with_its_token(lock):
    first = lock.take({"action": "deploy"})
    again = lock.take({"action": "deploy"}, dead_token=first["token"])
    assert again["recovered"][0]["token"] == first["token"]


def test_boot_identity_changes_with_pid_1(monkeypatch):
    now = zdt_lock.boot_id()
    monkeypatch.setattr(zdt_lock, "process_start", lambda pid: "12345" if pid == 1 else None)
    assert zdt_lock.boot_id() != now


def test_a_deploy_during_an_nginx_upgrade_is_told_so(lock):
    lock.take({"action": "nginx_upgrade", "release": "", "user": "ops", "controller": "bastion"}, host_process=True)
    with pytest.raises(LockHeld) as held:
        lock.take({"action": "deploy"}, wait=0.2)
    text = held.value.describe("shop")
    assert "held by the nginx upgrade by ops@bastion (pid" in text and "which is alive" in text
