"""zdt_rollback: when going back to the release standing by applies, and why not; the long
way (the deploy role's health-gated switch) takes every other case."""

from __future__ import annotations

import base64
import json
import os

import pytest
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_host
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App

WINDOW = {"serving": "2.0-b", "standby": "1.0-a", "links": {"current": "1.0-a", "previous": ""}}


class FakeSupervisor:
    states = {"shop@1.0-a.web": "RUNNING"}

    def state(self, name: str) -> str:
        return self.states.get(name, "")


@pytest.fixture
def app(tmp_path, monkeypatch):
    root = tmp_path / "shop"
    os.makedirs(root / "releases")
    os.symlink("releases/2.0-b", root / "current")
    os.symlink("releases/1.0-a", root / "previous")
    monkeypatch.setattr(zdt_host, "Supervisor", FakeSupervisor)
    return App("shop", str(root))


def why(app, state, release="previous", seconds=600.0, migrations="ignore", **window) -> str:
    params = {"release": release, "standby_seconds": seconds, "migrations": migrations}
    return zdt_host.standby_not_applicable(app, {**state, **window} if state else state, params, {"by": ""})


def test_the_standby_named_previous_or_by_its_id_applies(app):
    assert why(app, WINDOW) == ""
    assert why(app, WINDOW, release="1.0-a") == ""
    assert why(app, WINDOW, release="") == ""


@pytest.mark.parametrize(("state", "kwargs", "says"), [
    (None, {}, "no standby window is open"),
    (WINDOW, {"release": "0.9-z"}, "release 0.9-z is not the one standing by (1.0-a)"),
    (WINDOW, {"standby": "0.5-y"}, "release 1.0-a is not the one standing by (0.5-y)"),
    (WINDOW, {"serving": "3.0-c"}, "release 3.0-c no longer serves"),
    (WINDOW, {"seconds": 0}, "standby_seconds is 0"),
])
def test_every_other_case_says_why_and_goes_the_long_way(app, state, kwargs, says):
    seconds = kwargs.pop("seconds", 600.0)
    release = kwargs.pop("release", "previous")
    assert says in why(app, state, release=release, seconds=seconds, **kwargs)


def test_a_standby_whose_program_stopped_is_not_gone_back_to(app, monkeypatch):
    monkeypatch.setattr(FakeSupervisor, "states", {"shop@1.0-a.web": "STOPPED"})
    assert why(app, WINDOW) == "the standby's program shop@1.0-a.web is STOPPED"


def test_unknown_migrations_leave_the_refusal_to_the_long_way(app, monkeypatch):
    monkeypatch.setattr(zdt_host, "standby_unknown_migrations", lambda app, state: (["pages.0004_lang"], "window"))
    manage = {"manage": {"command": "manage.py", "user": "shop"}}
    assert why(app, WINDOW, migrations="refuse", **manage) == (
        "the database has migrations release 1.0-a does not know: pages.0004_lang")
    assert why(app, WINDOW, migrations="ignore", **manage) == ""


def test_the_migration_check_says_who_answered(app, monkeypatch):
    """The window's warm check when it answers, else a management command of the standby."""

    asked = []
    monkeypatch.setattr(zdt_host, "unknown_migrations", lambda path, command, user: asked.append(path) or ([], {}))
    monkeypatch.setattr(zdt_host, "ask_unknown_migrations", lambda socket, path: None)
    params = {"release": "previous", "standby_seconds": 600.0, "migrations": "refuse"}
    checked = {"by": ""}
    state = {**WINDOW, "manage": {"command": "manage.py", "user": "shop"}}
    assert zdt_host.standby_not_applicable(app, state, params, checked) == "" and checked == {"by": "django"}
    assert asked == [app.release("1.0-a")]
    monkeypatch.setattr(zdt_host, "ask_unknown_migrations", lambda socket, path: ([], {}))
    assert zdt_host.standby_not_applicable(app, state, params, checked) == "" and checked == {"by": "window"}
    assert len(asked) == 1


def run_helper(capsys, app, digest: str, **params) -> dict:
    """The host's helper asked as zdt_rollback's action plugin asks it."""
    encoded = base64.b64encode(json.dumps({**ASKED, **params}).encode()).decode()
    assert zdt_host.main(["rollback", "--app", app.name, "--root", app.root, "--digest", digest,
                          "--params", encoded], print) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


ASKED = {"release": "previous", "migrations": "refuse", "standby_seconds": 600.0, "who": {"user": "ann"}}


def test_the_helper_of_other_code_than_the_askers_changes_nothing(app, capsys):
    assert run_helper(capsys, app, "0123456789abcdef") == {"stale": True}


def test_the_helper_of_the_same_code_answers_as_the_module_would(app, capsys):
    """No window is open for this app: it says so (the long way follows), as the module does."""
    done = run_helper(capsys, app, zdt_host.helper_digest())
    assert done == {"changed": False, "rolled_back": False, "why": "no standby window is open",
                    "migrations_checked": ""}
    done = run_helper(capsys, app, zdt_host.helper_digest(), standby_seconds=0)
    assert done["why"].startswith("standby_seconds is 0")


def test_the_module_runs_the_same_job(run_module, app):
    from ansible_collections.zerodowntime.web.plugins.modules import zdt_rollback

    done = run_module(zdt_rollback.main, {"app_name": app.name, "app_root": app.root})
    assert not done.failed and done.result["why"] == "no standby window is open" and not done.result["changed"]
