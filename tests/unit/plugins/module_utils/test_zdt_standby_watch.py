"""The standby window's helper judges the serving release only when it can: restarts of
supervisor or nginx (an OS upgrade, the rolling maintenance) are neither failures nor
crashes of the helper."""

from __future__ import annotations

import socket
import xmlrpc.client

import pytest

from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_host, zdt_nginx
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_http import get_tcp
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_supervisor import (
    SHUTDOWN_STATE,
    Supervisor,
    SupervisorError,
)

APP = App("shop", "/srv/shop")
CHECK = {"port": 80, "release": "2.0"}


class States:
    """A supervisord that answers STATES (group -> state, or (state, stopped before)) or raises ERROR."""

    def __init__(self, states: dict | None = None, error: Exception | None = None) -> None:
        self.given, self.error = states or {}, error

    def states(self, groups: list[str]) -> dict[str, list[dict]]:
        if self.error:
            raise self.error
        found = {}
        for group, state in self.given.items():
            name, stopped = state if isinstance(state, tuple) else (state, False)
            found[group] = [{"statename": name, "stop": 1764000000 if stopped else 0}]
        return {group: infos for group, infos in found.items() if group in groups}


@pytest.fixture
def health(monkeypatch):  # noqa: ANN201
    """What nginx answers the health check: (ok, said, refused)."""
    answer = {"value": (True, "200 from release 2.0", False)}
    monkeypatch.setattr(zdt_nginx, "health_ok", lambda _check: answer["value"])
    return answer


def probe(supervisor: States) -> str | None:
    return zdt_host.probe(APP, supervisor, "2.0", ["queue"], CHECK)


def test_a_running_release_that_answers_is_alive(health):
    assert probe(States({"shop@2.0.web": "RUNNING", "shop@2.0.queue": "RUNNING"})) == ""


def test_a_program_that_failed_is_a_failure(health):
    assert "is FATAL" in probe(States({"shop@2.0.web": "RUNNING", "shop@2.0.queue": "FATAL"}))
    assert "is BACKOFF" in probe(States({"shop@2.0.web": "BACKOFF", "shop@2.0.queue": "STARTING"}))
    assert "is gone" in probe(States({"shop@2.0.queue": "RUNNING"}))


def test_supervisor_restarting_is_not_judged(health):
    assert probe(States(error=SupervisorError("supervisord is shutting down"))) is None
    assert probe(States({"shop@2.0.web": "STOPPING", "shop@2.0.queue": "RUNNING"})) is None
    # Started by a supervisord that just started: its health is not asked until it runs.
    health["value"] = (False, "502 from release (none)", False)
    assert probe(States({"shop@2.0.web": "STARTING", "shop@2.0.queue": "RUNNING"})) is None


def test_a_program_started_again_after_a_crash_is_judged(health):
    health["value"] = (False, "200 from release 1.0", False)
    assert "from release 1.0" in probe(States({"shop@2.0.web": ("STARTING", True), "shop@2.0.queue": "RUNNING"}))


def test_nginx_refusing_connections_is_not_judged_but_a_bad_answer_is(health):
    running = States({"shop@2.0.web": "RUNNING", "shop@2.0.queue": "RUNNING"})
    health["value"] = (False, "no answer ([Errno 111] Connection refused) from release (none)", True)
    assert probe(running) is None
    health["value"] = (False, "no answer (timed out) from release (none)", False)
    assert "timed out" in probe(running)
    health["value"] = (False, "200 from release 1.0", False)
    assert "from release 1.0" in probe(running)


def test_the_watch_neither_counts_nor_resets_what_it_cannot_judge(monkeypatch, tmp_path):
    """Two failures, a restart's unjudged checks (one raising), a third failure: rolled back."""
    app = App("shop", str(tmp_path / "srv"))
    state = {"serving": "2.0", "standby": "1.0", "until": 1e12, "watch": {"interval": 0, "failures": 3}}
    answers = iter(["down", "down", None, "raise", None, "down", ""])
    said, rolled = [], []

    def fake_probe(*_args) -> str | None:
        answer = next(answers)
        if answer == "raise":
            raise xmlrpc.client.Fault(SHUTDOWN_STATE, "SHUTDOWN_STATE")
        return answer

    monkeypatch.setattr(zdt_host, "probe", fake_probe)
    monkeypatch.setattr(zdt_host, "load_state", lambda _app: state)
    monkeypatch.setattr(App, "serving", lambda _self: ("2.0", "1.0"))
    monkeypatch.setattr(zdt_host, "rollback", lambda *args, **_kw: rolled.append(args[2]))
    monkeypatch.setattr(zdt_host, "retire", lambda *_args: pytest.fail("the window ended instead"))
    assert zdt_host.watch_window(app, state, said.append, None, CHECK) == 0
    assert rolled == ["watch: release 2.0 failed: down"]
    assert any("cannot judge 2.0 now: Fault" in line for line in said), said


def test_supervisord_shutting_down_is_a_supervisor_error(tmp_path):
    """Every call while supervisord stops answers the SHUTDOWN_STATE fault."""

    class Stopping:
        def __getattr__(self, _name: str):  # noqa: ANN204
            def call(*_args: object) -> None:
                raise xmlrpc.client.Fault(SHUTDOWN_STATE, "SHUTDOWN_STATE")
            return call

    supervisor = Supervisor(str(tmp_path / "supervisor.sock"))
    supervisor.rpc = Stopping()
    with pytest.raises(SupervisorError, match="shutting down"):
        supervisor.state("shop@2.0.web")


def test_an_answer_tells_a_refused_connection_from_a_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    assert get_tcp("127.0.0.1", port, "/health", "localhost", timeout=2).refused
