"""The state after deploying webxample 2.0.0 over 1.0.0 under a constant load."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
from heyreport import parse  # noqa: E402

APP_ROOT = "/srv/webxample"
APP_USER = "webxample"


@pytest.fixture(scope="module")
def current_release(host) -> str:
    return host.file(f"{APP_ROOT}/current").linked_to.rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def redirects(host) -> bool:
    """Whether the host's site redirects plain HTTP to HTTPS (the Debian 13 host does)."""
    return bool(host.ansible.get_variables().get("deploy_tls_redirect"))


@pytest.fixture(scope="module")
def manifest(host, current_release) -> dict:
    return json.loads(host.file(f"{APP_ROOT}/releases/{current_release}/release.json").content_string)


def test_current_points_at_the_v2_release(host, current_release, manifest):
    assert current_release.startswith("2.0.0-")
    assert manifest["version"] == "2.0.0"
    assert manifest["release_id"] == current_release


def test_previous_points_at_the_v1_release(previous_release):
    assert previous_release.startswith("1.0.0-")


def test_nginx_answers_with_the_v2_release_id(host, current_release, redirects):
    site = "https://localhost" if redirects else "http://localhost"
    headers = host.check_output(f"curl -sS -k --http1.1 -D - -o /dev/null {site}/")
    assert f"X-Release: {current_release}" in headers
    health = json.loads(host.check_output(f"curl -sS -k {site}/health"))
    assert health["status"] == "ok"
    assert health["release"] == current_release
    assert health["version"] == "2.0.0"


@pytest.fixture(scope="module")
def previous_release(host) -> str:
    return host.file(f"{APP_ROOT}/previous").linked_to.rsplit("/", 1)[-1]


def test_v2_serves_and_v1_stands_by_for_an_instant_rollback(host, current_release, previous_release):
    status = host.run("supervisorctl status").stdout.strip().splitlines()
    programs = sorted(line.split()[:2] for line in status if line.startswith("webxample@"))
    assert programs == sorted([[f"webxample@{current_release}.web", "RUNNING"],
                               [f"webxample@{previous_release}.web", "RUNNING"]])
    # For deploy_standby_seconds (600 s) the host watches v2, then stops v1.
    assert host.run("systemctl is-active zdt-standby-webxample.service").stdout.strip() == "active"
    assert host.run("systemctl is-enabled zdt-standby-webxample.service").stdout.strip() == "enabled"
    window = json.loads(host.run("cat /var/lib/zerodowntime/webxample/standby.json").stdout)
    assert (window["serving"], window["standby"]) == (current_release, previous_release)


def test_nginx_falls_back_to_v1_only_while_it_stands_by(host, current_release, previous_release):
    site = host.file("/etc/nginx/conf.d/webxample.conf").content_string
    assert f"/run/{current_release}.sock max_fails=0;" in site
    assert f"/run/{previous_release}.sock max_fails=0 backup;" in site
    assert not host.file("/etc/nginx/conf.d/webxample.preview.conf").exists
    # What the window's helper puts in place when the window ends: v2 alone.
    window = json.loads(host.run("cat /var/lib/zerodowntime/webxample/standby.json").stdout)
    assert f"/run/{current_release}.sock" in window["site_drained"]
    assert f"/run/{previous_release}.sock" not in window["site_drained"] and " backup;" not in window["site_drained"]


def test_nginx_holds_neither_release_down_once_both_answer_again(host, current_release, previous_release, redirects):
    """Both sockets fail for a moment (as in a supervisor restart), then answer again: nginx
    must not keep either marked down. With nginx's default failure accounting each worker
    lets one request probe the release and answers the others 502 "no live upstreams"."""
    site = "https://localhost" if redirects else "http://localhost"
    sockets = [f"{APP_ROOT}/run/{release}.sock" for release in (current_release, previous_release)]
    # Six requests while both are gone (fewer than the window's helper counts as failing:
    # it rolls back at 10 5xx), on new connections so that both nginx workers meet them;
    # the renames keep the programs running, so the helper's checks still pass.
    away = "; ".join(f"mv {path} {path}.away" for path in sockets)
    back = "; ".join(f"mv {path}.away {path}" for path in sockets)
    burst = host.run(f"{away}; for i in 1 2 3 4 5 6; do curl -sk -o /dev/null {site}/; done; {back}; "
                     f"hey -n 200 -c 20 {site}/")
    assert burst.rc == 0, burst.stderr
    report = parse(burst.stdout)
    assert report["requests"] == 200 and report["failed"] == 0, report


def test_only_the_serving_and_standby_sockets_exist(host, current_release, previous_release):
    sockets = sorted(host.check_output(f"ls {APP_ROOT}/run").split())
    assert sockets == sorted([f"{current_release}.sock", f"{previous_release}.sock"])


def test_the_env_file_is_0600_and_owned_by_the_app_user(host, current_release):
    env = host.file(f"{APP_ROOT}/releases/{current_release}/.env")
    assert env.mode == 0o600
    assert env.user == APP_USER
    assert "WEBXAMPLE_SECRET_KEY=" in host.run(f"cat {env.path}").stdout


def test_gunicorn_runs_as_the_app_user(host):
    owners = host.check_output("ps -C gunicorn -o user= || ps -eo user=,args= | awk '/bin\\/gunicorn/ {print $1}'")
    users = {line.split()[0] for line in owners.splitlines() if line.strip()}
    assert users == {APP_USER}


def test_the_socket_is_reachable_by_nginx_and_not_by_others(host, current_release):
    run_dir = host.file(f"{APP_ROOT}/run")
    assert (run_dir.user, run_dir.group, run_dir.mode) == (APP_USER, "www-data", 0o750)
    sock = host.file(f"{APP_ROOT}/run/{current_release}.sock")
    assert sock.is_socket
    assert sock.group == "www-data"
    assert sock.mode & 0o007 == 0


def test_supervisor_control_socket_is_not_world_writable(host):
    assert host.file("/var/run/supervisor.sock").mode & 0o002 == 0


def test_health_checks_have_their_own_nginx_log(host):
    assert host.file("/var/log/nginx/webxample.health.log").contains("GET /health")


def test_v2_booted_slowly(host, current_release):
    env = host.run(f"cat {APP_ROOT}/releases/{current_release}/.env").stdout
    assert "WEBXAMPLE_BOOT_DELAY=10" in env


def test_no_request_failed_during_the_v2_deploy(host):
    """200 requests/s in all: over HTTP and HTTPS on IPv4 and IPv6, or over HTTPS only
    where plain HTTP redirects."""
    loads = host.ansible.get_variables()["zdt_test_load_targets"]
    assert sum(int(load["rate"]) for load in loads) == 200
    for load in loads:
        report = parse(host.file(f"/var/tmp/zdt-load/{load['name']}.txt").content_string)
        print(load["name"], json.dumps(report))
        assert report["requests"] >= 10 * int(load["rate"]), (load, report)
        assert report["failed"] == 0, (load, report)


URLS = {
    "http-ipv4": "http://127.0.0.1/",
    "http-ipv6": "http://[::1]/",
    "https-ipv4": "https://127.0.0.1/",
    "https-ipv6": "https://[::1]/",
}


@pytest.mark.parametrize("url", list(URLS.values()), ids=list(URLS))
def test_the_app_answers_over_both_families_and_both_schemes(host, current_release, redirects, url):
    # Not Debian's "Welcome to nginx!" page: its default site (which owned [::]:80) is gone.
    answer = host.check_output(f"curl -sS -k -g -H 'Host: localhost' -o /dev/null -D - {url}?q=1")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in answer.splitlines()[1:])}
    if redirects and url.startswith("http:"):
        assert answer.startswith("HTTP/1.1 301") and headers.get("location") == "https://localhost/?q=1", answer
        assert "x-release" not in headers  # nginx itself, not the app
    else:
        assert headers.get("x-release") == current_release, answer
    assert "Welcome to nginx" not in host.check_output(f"curl -sS -k -g -H 'Host: localhost' {url}")
    assert not host.file("/etc/nginx/sites-enabled/default").exists


def test_https_speaks_http2_and_sends_hsts_over_tls_only(host):
    tls = host.check_output("curl -sS -k --http2 -o /dev/null -D - https://localhost/")
    assert tls.startswith("HTTP/2 200"), tls
    assert "strict-transport-security: max-age=300" in tls.lower()
    plain = host.check_output("curl -sS -o /dev/null -D - http://localhost/")
    assert "strict-transport-security" not in plain.lower()


def test_acme_challenges_are_answered_by_nginx_whatever_release_serves(host):
    for url in ("http://localhost", "http://[::1]"):
        answer = host.run(f"curl -sS -g -H 'Host: localhost' -D - {url}/.well-known/acme-challenge/zdt-token")
        assert answer.stdout.endswith("zdt-token.acme-key-authorization"), answer.stdout
        assert "X-Release" not in answer.stdout  # nginx itself, not the app


def test_each_host_got_wheels_built_for_its_own_python(host, current_release):
    """One controller (Python 3.11.7), one run: Debian 12's 3.11.2 and Debian 13's 3.13 each
    install binary wheels for their own ABI, and the markers of their exact version."""
    release = f"{APP_ROOT}/releases/{current_release}"
    version = host.check_output(f"{release}/venv/bin/python -c 'import sys; print(sys.version.split()[0])'")
    debian = host.system_info.release.split(".")[0]
    assert (debian, version[:4]) in (("12", "3.11"), ("13", "3.13")), (debian, version)
    abi = "cp" + "".join(version.split(".")[:2])
    wheels = host.check_output(f"ls {release}/wheels").split()
    assert [w for w in wheels if w.startswith("PyYAML-")] == [
        f"PyYAML-6.0.2-{abi}-{abi}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"], wheels
    # The C extension loads: the wheel fits the host's Python.
    assert host.check_output(f"{release}/venv/bin/python -c 'import yaml; print(yaml.__with_libyaml__)'") == "True"
    # redis needs async-timeout on Python < 3.11.3 only (python_full_version marker).
    needs_timeout = tuple(int(x) for x in version.split(".")) < (3, 11, 3)
    assert any(w.startswith("async_timeout-") for w in wheels) == needs_timeout, (version, wheels)
    print(f"Debian {debian}, Python {version}: release {current_release}, {len(wheels)} wheels")


def test_a_code_only_release_shipped_only_the_apps_own_wheel(host):
    """2.0.0 has 1.0.0's dependencies: its deploy sends the host the wheels its wheelhouse
    lacks (webxample's own), not the whole artifact the first deploy sent."""
    lines = host.file(f"{APP_ROOT}/history.jsonl").content_string.splitlines()
    deploys = [e for e in map(json.loads, filter(None, lines)) if e["action"] == "deploy" and e["result"] == "success"]
    first, last = int(deploys[0]["shipped_bytes"]), int(deploys[-1]["shipped_bytes"])
    print(f"bytes shipped: first deploy {first:,}, the code-only release {last:,}")
    assert first > 2_000_000, deploys[0]
    assert 0 < last < 200_000, deploys[-1]
