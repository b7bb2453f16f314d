"""zdt_rollback: when going back to the release standing by applies, and why not; the long
way (the deploy role's health-gated switch) takes every other case."""

from __future__ import annotations

import os

import pytest
from ansible_collections.zerodowntime.web.plugins.modules import zdt_rollback

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
    monkeypatch.setattr(zdt_rollback, "Supervisor", FakeSupervisor)
    return zdt_rollback.App("shop", str(root))


def why(app, state, release="previous", seconds=600.0, migrations="ignore", **window) -> str:
    params = {"release": release, "standby_seconds": seconds, "migrations": migrations}
    return zdt_rollback.not_applicable(app, {**state, **window} if state else state, params, {"by": ""})


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
    monkeypatch.setattr(zdt_rollback, "standby_unknown_migrations", lambda app, state: (["pages.0004_lang"], "window"))
    manage = {"manage": {"command": "manage.py", "user": "shop"}}
    assert why(app, WINDOW, migrations="refuse", **manage) == (
        "the database has migrations release 1.0-a does not know: pages.0004_lang")
    assert why(app, WINDOW, migrations="ignore", **manage) == ""


def test_the_migration_check_says_who_answered(app, monkeypatch):
    """The window's warm check when it answers, else a management command of the standby."""
    from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_host

    asked = []
    monkeypatch.setattr(zdt_host, "unknown_migrations", lambda path, command, user: asked.append(path) or ([], {}))
    monkeypatch.setattr(zdt_host, "ask_unknown_migrations", lambda socket, path: None)
    params = {"release": "previous", "standby_seconds": 600.0, "migrations": "refuse"}
    checked = {"by": ""}
    state = {**WINDOW, "manage": {"command": "manage.py", "user": "shop"}}
    assert zdt_rollback.not_applicable(app, state, params, checked) == "" and checked == {"by": "django"}
    assert asked == [app.release("1.0-a")]
    monkeypatch.setattr(zdt_host, "ask_unknown_migrations", lambda socket, path: ([], {}))
    assert zdt_rollback.not_applicable(app, state, params, checked) == "" and checked == {"by": "window"}
    assert len(asked) == 1
