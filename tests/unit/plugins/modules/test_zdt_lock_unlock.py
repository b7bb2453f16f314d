"""zdt_lock state=absent with prune: old releases go in the run that records the outcome and
releases the lock, only while the deploy's token holds it; a prune that fails still releases it."""

from __future__ import annotations

import json
import os
import time

import pytest
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_host
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_lock import Lock
from ansible_collections.zerodowntime.web.plugins.modules import zdt_lock

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lock's state directory is root's")


@pytest.fixture
def app(tmp_path, monkeypatch):
    state = str(tmp_path / "state")
    monkeypatch.setattr(zdt_lock, "App", lambda name, root: App(name, root, state_dir=state))
    # Programs live in /etc/supervisor/conf.d on a host; none here.
    monkeypatch.setattr(App, "programs", lambda self: [])
    root = tmp_path / "shop"
    for index, release in enumerate(["1.0-a", "2.0-b", "3.0-c", "4.0-d"]):
        path = root / "releases" / release
        os.makedirs(path)
        (path / "release.json").write_text("{}")
        os.utime(path / "release.json", (time.time() - 100 + index, time.time() - 100 + index))
    os.symlink("releases/3.0-c", root / "previous")
    os.symlink("releases/4.0-d", root / "current")
    return App("shop", str(root), state_dir=state)


def unlock(run_module, app: App, token: str, **prune) -> dict:
    done = run_module(zdt_lock.main, {"app_name": "shop", "app_root": app.root, "state": "absent", "token": token,
                                      "history_entry": {"action": "deploy", "result": "success"},
                                      "prune": prune or {"keep": 2}})
    assert not done.failed, done.result
    return done.result


def history(app: App) -> list[dict]:
    with open(app.history, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_the_unlock_prunes_records_and_releases_in_one_run(run_module, app):
    token = Lock(app).take({"action": "deploy"})["token"]
    result = unlock(run_module, app, token)
    assert result["changed"] and result["removed"] == ["2.0-b", "1.0-a"] and result["released"]
    assert sorted(os.listdir(os.path.join(app.root, "releases"))) == ["3.0-c", "4.0-d"]
    assert history(app)[-1]["result"] == "success" and Lock(app).holder() is None


def test_a_token_that_no_longer_holds_the_lock_prunes_nothing(run_module, app):
    Lock(app).take({"action": "deploy"})
    result = unlock(run_module, app, "a-broken-deploys-token")
    assert "removed" not in result and not result["changed"] and not result["released"]
    assert len(os.listdir(os.path.join(app.root, "releases"))) == 4


def test_a_prune_that_fails_warns_and_still_releases_the_lock(run_module, app, monkeypatch):
    def refuse(*_args):  # noqa: ANN002
        raise PermissionError(13, "Permission denied", "releases/1.0-a")

    monkeypatch.setattr(zdt_host, "discard", refuse)
    token = Lock(app).take({"action": "deploy"})["token"]
    result = unlock(run_module, app, token)
    assert result["removed"] == [] and "Permission denied" in result["prune_error"]
    assert result["released"] and Lock(app).holder() is None and history(app)[-1]["result"] == "success"
