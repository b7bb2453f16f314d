"""10. One request budget (deploy_request_timeout, 60 s by default): a request longer than
nginx's old 30 s worker_shutdown_timeout, in flight across a switch, completes with 200 on a
deploy and on a rollback."""

from __future__ import annotations

import time

import pytest
from conftest import load, run, stage, state, tail, wait_for

LONG = 35  # seconds: longer than the worker_shutdown_timeout nginx had before the budget


def start_long_request(host, name: str) -> None:
    host.run(f"rm -f /var/tmp/{name}.out; systemctl reset-failed zdt-{name}")
    host.run_expect([0], f"systemd-run --unit=zdt-{name} --property=StandardOutput=file:/var/tmp/{name}.out "
                    f"curl -s -o /dev/null -w '%{{http_code}} %{{time_total}}' 'http://localhost/slow/?s={LONG}'")


def long_request_result(host, name: str) -> tuple[int, float]:
    assert wait_for(lambda: host.run(f"systemctl is-active zdt-{name}").stdout.strip() != "active", LONG + 30, 1)
    code, seconds = host.run(f"cat /var/tmp/{name}.out").stdout.split()
    return int(code), float(seconds)


@pytest.mark.parametrize("action", ["deploy", "rollback"])
def test_a_long_request_across_the_switch_completes(host, serving, action):
    if action == "rollback":
        deployed = run("deploy.yml", source=stage("2.0.0"))
        assert deployed.returncode == 0, tail(deployed)
    before = state(host)
    name = f"long-request-{action}"
    with load(host, f"budget-{action}") as report:
        start_long_request(host, name)
        time.sleep(1)  # in flight on the serving release before the deploy starts
        result = run("deploy.yml", source=stage("2.0.0")) if action == "deploy" else run("rollback.yml")
        assert result.returncode == 0, tail(result)
        code, seconds = long_request_result(host, name)
    report.update(long_request_status=code, long_request_seconds=seconds)
    assert state(host)["serving"] != before["serving"]
    assert code == 200 and seconds >= LONG, (code, seconds)
    assert report["failed"] == 0, report
