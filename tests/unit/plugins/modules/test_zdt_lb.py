"""zdt_lb: present is idempotent and keeps drained members, drain and restore refuse what
must not happen and change nothing then; nginx itself is faked (nginx -t, reload, drain)."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_nginx
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_http import Answer
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import Lb
from ansible_collections.zerodowntime.web.plugins.modules import zdt_lb

BACKENDS = [{"host": "web1", "address": "127.0.0.1", "port": 8001}, {"host": "web2", "address": "127.0.0.1",
                                                                     "port": 8002}]


@pytest.fixture
def host(tmp_path, monkeypatch):
    """The LB host's files under TMP_PATH; nginx -t, the reload and the drain recorded."""
    (tmp_path / "conf.d").mkdir()
    default = tmp_path / "default"
    default.write_text("server { listen 80 default_server; }\n")
    calls: list[str] = []

    def layout(name: str) -> Lb:
        lb = Lb(name, nginx_dir=str(tmp_path / "conf.d"), state_dir=str(tmp_path / "lb.d"))
        lb.access_log = str(tmp_path / f"{name}.lb.access.log")
        return lb

    monkeypatch.setattr(zdt_lb, "Lb", layout)
    monkeypatch.setattr(zdt_lb, "NGINX_DEFAULT_SITE", str(default))
    monkeypatch.setattr(zdt_nginx, "test_config", lambda files, main: calls.append("test") or "")
    monkeypatch.setattr(zdt_nginx, "reload", lambda: calls.append("reload") or 0.1)
    monkeypatch.setattr(zdt_nginx, "drain", lambda seconds: calls.append("drain") or True)
    monkeypatch.setattr(zdt_lb.zdt_lb, "established", lambda targets: dict.fromkeys(targets, 0))
    monkeypatch.setattr(zdt_lb, "get_tcp", lambda *a, **k: Answer(200, {}, "{}"))
    return type("Host", (), {"path": tmp_path, "calls": calls, "lb": zdt_lb.Lb("shop")})


def args(**more) -> dict:
    return {"name": "shop", "backends": BACKENDS, **more}


def test_present_writes_then_changes_nothing_the_second_time(run_module, host):
    first = run_module(zdt_lb.main, args())
    assert not first.failed and first.result["changed"] and first.result["reloaded"]
    assert host.calls == ["test", "reload"]
    assert os.path.isfile(host.lb.upstream_conf) and os.path.isfile(host.lb.server_conf)
    assert not os.path.exists(host.path / "default")
    again = run_module(zdt_lb.main, args())
    assert not again.result["changed"] and host.calls == ["test", "reload"]


def test_check_mode_on_a_first_run_writes_nothing_and_reports_the_change(run_module, host):
    done = run_module(zdt_lb.main, args(_ansible_check_mode=True, _ansible_diff=True))
    assert done.result["changed"] and not done.failed
    assert not os.path.exists(host.lb.state) and not os.path.exists(host.lb.upstream_conf)
    assert {d["after_header"] for d in done.result["diff"]} >= {host.lb.upstream_conf, host.lb.state}
    assert "reload" not in host.calls


def test_a_drained_member_stays_drained_when_present_runs_again(run_module, host):
    run_module(zdt_lb.main, args())
    drained = run_module(zdt_lb.main, {"name": "shop", "state": "drained", "members": ["web1"]})
    assert not drained.failed and drained.result["down"] == ["web1"] and drained.result["connections"] == {"web1": 0}
    assert "server 127.0.0.1:8001 weight=1 max_fails=3 fail_timeout=10s down;" in open(host.lb.upstream_conf).read()
    again = run_module(zdt_lb.main, args())
    assert not again.result["changed"] and again.result["down"] == ["web1"]


def test_draining_the_last_active_member_is_refused_and_changes_nothing(run_module, host):
    run_module(zdt_lb.main, args())
    run_module(zdt_lb.main, {"name": "shop", "state": "drained", "members": ["web1"]})
    before = open(host.lb.state).read()
    refused = run_module(zdt_lb.main, {"name": "shop", "state": "drained", "members": ["web2"]})
    assert refused.failed and "would leave load balancer shop no active member (web1 already drained)" in refused.result["msg"]
    assert open(host.lb.state).read() == before and not refused.result["changed"]
    both = run_module(zdt_lb.main, {"name": "shop", "state": "drained", "members": ["web1", "web2"]})
    assert both.failed and "no active member" in both.result["msg"]


def test_a_drained_member_still_connected_fails_naming_it_and_the_count(run_module, host, monkeypatch):
    run_module(zdt_lb.main, args())
    monkeypatch.setattr(zdt_lb.zdt_lb, "established", lambda targets: {"web1": 2})
    done = run_module(zdt_lb.main, {"name": "shop", "state": "drained", "members": ["web1"], "drain_timeout": 0.3})
    assert done.failed and "web1 still has 2 established connections from load balancer shop" in done.result["msg"]


def test_restore_asks_the_members_health_and_refuses_an_unhealthy_one(run_module, host, monkeypatch):
    run_module(zdt_lb.main, args(health_host="shop.example.com"))
    run_module(zdt_lb.main, {"name": "shop", "state": "drained", "members": ["web1"]})
    asked = []

    def get(address, port, path, host_header, **kwargs):  # noqa: ANN001, ANN003, ANN202
        asked.append((address, port, path, host_header))
        return Answer(0, {}, "", "Connection refused")

    monkeypatch.setattr(zdt_lb, "get_tcp", get)
    refused = run_module(zdt_lb.main, {"name": "shop", "state": "restored", "members": ["web1"]})
    assert asked == [("127.0.0.1", 8001, "/health", "shop.example.com")]
    assert refused.failed and "web1 gave no answer (Connection refused) at http://127.0.0.1:8001/health" in (
        refused.result["msg"])
    assert "down;" in open(host.lb.upstream_conf).read()
    monkeypatch.setattr(zdt_lb, "get_tcp", lambda *a, **k: Answer(204, {}, ""))
    restored = run_module(zdt_lb.main, {"name": "shop", "state": "restored", "members": ["web1"]})
    assert not restored.failed and restored.result["changed"] and restored.result["down"] == []
    assert "down;" not in open(host.lb.upstream_conf).read()


def test_an_unknown_member_or_an_unconfigured_site_is_named(run_module, host):
    missing = run_module(zdt_lb.main, {"name": "shop", "state": "drained", "members": ["web1"]})
    assert missing.failed and "is not configured on this host" in missing.result["msg"]
    run_module(zdt_lb.main, args())
    unknown = run_module(zdt_lb.main, {"name": "shop", "state": "restored", "members": ["web9"]})
    assert unknown.failed and "web9 is not a member of load balancer shop (members: web1, web2)" in unknown.result["msg"]


def test_a_bad_backend_fails_before_anything_is_written(run_module, host):
    done = run_module(zdt_lb.main, args(backends=[{"host": "web1", "port": 0}]))
    assert done.failed and done.result["msg"].startswith("backends: port 0 of web1")
    assert not os.path.exists(host.lb.state_dir) and host.calls == []


def test_a_change_waits_for_another_hosts_change_of_the_same_site(run_module, host):
    run_module(zdt_lb.main, args())
    descriptor = os.open(host.lb.lock, os.O_RDWR)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    threading.Timer(0.3, os.close, [descriptor]).start()
    done = run_module(zdt_lb.main, {"name": "shop", "state": "drained", "members": ["web1"]})
    assert not done.failed and done.result["timings"]["lock"] >= 0.2
    descriptor = os.open(host.lb.lock, os.O_RDWR)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        held = run_module(zdt_lb.main, {"name": "shop", "state": "restored", "members": ["web1"], "lock_wait": 0.2})
    finally:
        os.close(descriptor)
    assert held.failed and "another change of load balancer shop held" in held.result["msg"]


def test_report_counts_from_the_stored_site(run_module, host):
    run_module(zdt_lb.main, args())
    with open(host.lb.access_log, "w", encoding="utf-8") as log:
        log.write('5.000 200 0.001 "127.0.0.1:8001" "200" "0.001" 1.2.3.4 "h" "GET / HTTP/1.1" 1 "-"\n'
                  '6.000 200 0.001 "127.0.0.1:8002" "200" "0.001" 1.2.3.4 "h" "GET / HTTP/1.1" 1 "-"\n')
    done = run_module(zdt_lb.main, {"name": "shop", "state": "report", "members": ["web2"], "since": 5.5})
    assert not done.failed and not done.result["changed"]
    assert done.result["report"]["members"] == {"web2": {"requests": 1, "status_5xx": 0, "lb_errors": 0, "retried": 0}}
