"""nginx's binary replaced while both apps serve (roles/nginx_upgrade), under recorded load.

The image carries two Debian builds of nginx in apt's cache (sandbox/build-image.sh); the
newer one is installed. Each case under its own recorded load on both sites: a downgrade
to the older build, an upgrade to a binary that exits after USR2 (rolled back), one that
nginx -t refuses (refused before anything is signalled), the upgrade back to the newer
build, the same upgrade again (nothing to do), and an upgrade refused while a deploy holds
an app's lock, beside that deploy, which must work on the upgraded nginx. Runs after
test_realapp.py (the apps' story), on the same instance."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from testlib import load, playbook_cmd, ansible_env, run, save_results, squash, stage, tail, wait_for  # noqa: E402

SCENARIO = Path(__file__).resolve().parents[1]
ADMIN = ["-e", f"@{SCENARIO / 'shop-admin.yml'}"]
SHOP_HOST, ADMIN_HOST = "shop.example.test", "admin.example.test"
EXITS = """#!/bin/sh
# Passes nginx -t and -v as the real binary; started as a master (after USR2) it exits.
for arg in "$@"; do case "$arg" in -t|-v|-V) exec /usr/local/lib/zdt-test/nginx "$@";; esac; done
exit 1
"""
REFUSES = """#!/bin/sh
echo 'nginx: [emerg] unknown directive "zdt_test" in /etc/nginx/nginx.conf:1' >&2
exit 1
"""


def nginx_state(host) -> dict:
    master = host.run("cat /run/nginx.pid").stdout.strip()
    return {
        "master": master,
        "package": host.run("dpkg-query -W -f '${Version}' nginx").stdout.strip(),
        "running_sha": host.run(f"sha256sum /proc/{master}/exe").stdout.split()[0] if master else "",
        "disk_sha": host.run("sha256sum /usr/sbin/nginx").stdout.split()[0],
        "v": host.run("nginx -v 2>&1").stdout.strip(),
        "masters": host.run("pgrep -c -f '^nginx: master'").stdout.strip(),
        "main_pid": host.run("systemctl show -p MainPID --value nginx").stdout.strip(),
    }


def deb_sha(host, version: str) -> str:
    deb = f"/var/cache/apt/archives/nginx_{version.replace(':', '%3a')}_amd64.deb"
    return host.run(f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./usr/sbin/nginx | sha256sum").stdout.split()[0]


@contextmanager
def loads(host, case: str):
    """Recorded load on both sites for the duration of one case: {"shop": report, "admin": report}."""
    slug = re.sub(r"[^a-z0-9]+", "-", case.lower()).strip("-")
    with load(host, f"nginx-{slug}-shop", 100, extra=f"-host {SHOP_HOST}") as shop, \
            load(host, f"nginx-{slug}-admin", 50, extra=f"-host {ADMIN_HOST}") as admin:
        time.sleep(1)
        yield {"shop": shop, "admin": admin}
        time.sleep(1)


def upgrade(*extra: str) -> dict:
    started = time.monotonic()
    result = run("nginx_upgrade.yml", "-e", "nginx_upgrade_bake_seconds=2", *extra)
    return {"rc": result.returncode, "seconds": round(time.monotonic() - started, 1), "text": squash(result),
            "tail": tail(result)}


@pytest.fixture(scope="module")
def story(host) -> dict:
    s: dict = {}
    cached = host.run("ls /var/cache/apt/archives/").stdout.split()
    versions = sorted({m.group(1).replace("%3a", ":") for m in map(re.compile(r"^nginx_(.+)_amd64\.deb$").match,
                                                                    cached) if m})
    installed = nginx_state(host)["package"]
    assert len(versions) >= 2 and installed in versions, (versions, installed)
    s["new"] = installed
    s["old"] = next(v for v in versions if v != installed)
    s["sha"] = {v: deb_sha(host, v) for v in (s["old"], s["new"])}
    host.run("mkdir -p /usr/local/lib/zdt-test && cp /usr/sbin/nginx /usr/local/lib/zdt-test/nginx")
    for name, text in (("nginx-exits", EXITS), ("nginx-refuses", REFUSES)):
        host.run(f"cat > /usr/local/lib/zdt-test/{name} <<'SH'\n{text}SH\nchmod 0755 /usr/local/lib/zdt-test/{name}")
    s["loads"] = {}
    for name, extra in (
        ("downgrade", ["-e", f"nginx_upgrade_version={s['old']}"]),
        ("exits after USR2", ["-e", "nginx_upgrade_binary=/usr/local/lib/zdt-test/nginx-exits"]),
        ("refused by nginx -t", ["-e", "nginx_upgrade_binary=/usr/local/lib/zdt-test/nginx-refuses"]),
        ("upgrade", ["-e", f"nginx_upgrade_version={s['new']}"]),
        ("again", ["-e", f"nginx_upgrade_version={s['new']}"]),
    ):
        before = nginx_state(host)
        with loads(host, name) as s["loads"][name]:
            case = upgrade(*extra)
        s[name] = {**case, "before": before, "after": nginx_state(host),
                   "leftovers": host.run("ls -a /usr/sbin | grep zdt").stdout.split()}
    # A deploy holds shop-admin's lock: an upgrade meanwhile is refused; the deploy works.
    with loads(host, "during a deploy") as s["loads"]["during a deploy"]:
        deploy = subprocess.Popen(playbook_cmd("deploy.yml", *ADMIN, "-e", f"deploy_source_path={stage('3.0.0')}"),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ansible_env())
        s["deploy_locked"] = wait_for(lambda: '"deploy"' in host.run(
            "cat /var/lib/zerodowntime/shop-admin/lock/owner.json").stdout, 60, 0.2)
        s["during deploy"] = {**upgrade("-e", f"nginx_upgrade_version={s['old']}", "-e", "nginx_upgrade_lock_wait=0"),
                              "after": nginx_state(host)}
        s["deploy"] = {"output": deploy.communicate(timeout=600)[0], "rc": deploy.returncode}
    s["reload"] = host.run("systemctl reload nginx")
    s["after_reload"] = nginx_state(host)
    s["admin_release"] = host.run("readlink /srv/shop-admin/current").stdout.strip()
    s["history"] = [json.loads(line) for line in host.run("cat /srv/shop/history.jsonl").stdout.splitlines()
                    if '"nginx_upgrade"' in line]
    s["verify"] = host.run("dpkg --verify nginx nginx-common").stdout
    save_results("realapp-nginx-upgrade")
    return s


def test_no_request_failed_in_any_case(story):
    for case, sites in story["loads"].items():
        seconds = story.get(case, {}).get("seconds", "")
        print(f"{case}: shop {sites['shop']['requests']} requests / {sites['shop']['failed']} failed, admin "
              f"{sites['admin']['requests']} / {sites['admin']['failed']}, max {sites['shop']['max_ms']} ms; "
              f"ansible-playbook {seconds} s")
        for site, report in sites.items():
            assert report["requests"] >= 100 and report["failed"] == 0, (case, site, report)


@pytest.mark.parametrize("name,version", [("downgrade", "old"), ("upgrade", "new")])
def test_the_new_binary_serves_under_a_new_master_that_systemd_follows(story, name, version):
    case = story[name]
    print(f"{name} {case['before']['package']} -> {case['after']['package']}: {case['seconds']} s, master "
          f"{case['before']['master']} -> {case['after']['master']}")
    assert case["rc"] == 0, case["tail"]
    before, after = case["before"], case["after"]
    assert after["master"] != before["master"] and after["masters"] == "1"
    assert after["package"] == story[version], "the package database names the binary that runs"
    assert after["running_sha"] == after["disk_sha"] == story["sha"][story[version]]
    assert before["running_sha"] != after["running_sha"]
    assert after["main_pid"] == after["master"], "systemd follows the new master"
    assert "nginx version: nginx/" in after["v"]
    assert case["leftovers"] == []
    assert "apps checked: shop, shop-admin" in case["text"], case["tail"]


def test_a_binary_that_exits_after_usr2_is_rolled_back(story):
    case = story["exits after USR2"]
    assert case["rc"] != 0
    text = case["text"]
    print(text[text.find("nginx upgrade to"):][:500])
    assert "failed at start" in text and "Rolled back" in text and "the old binary serves" in text, case["tail"]
    before, after = case["before"], case["after"]
    assert after["master"] == before["master"] and after["masters"] == "1"
    assert after["disk_sha"] == before["disk_sha"] == before["running_sha"], "the old binary is back on disk"
    assert after["package"] == before["package"] == story["old"]
    assert case["leftovers"] == []


def test_a_binary_nginx_t_refuses_is_never_signalled(story):
    case = story["refused by nginx -t"]
    assert case["rc"] != 0
    assert "refuses the live configuration" in case["text"] and "Nothing was changed" in case["text"], case["tail"]
    assert 'unknown directive "zdt_test"' in case["text"]
    assert case["after"] == case["before"]
    assert case["leftovers"] == []


def test_the_same_version_again_changes_nothing(story):
    case = story["again"]
    assert case["rc"] == 0 and re.search(r"changed=0\s", case["text"]), case["tail"]
    assert case["after"]["master"] == case["before"]["master"]


def test_an_upgrade_never_overlaps_a_deploy_and_the_deploy_works(story):
    assert story["deploy_locked"], "the deploy never took its lock"
    refused = story["during deploy"]
    assert refused["rc"] != 0
    assert "nginx upgrade refused: the deploy lock of shop-admin is held by the deploy of release" in refused["text"], \
        refused["tail"]
    assert "Nothing was changed" in refused["text"]
    assert refused["after"]["package"] == story["new"]
    assert story["deploy"]["rc"] == 0, story["deploy"]["output"][-3000:]
    assert story["admin_release"].startswith("releases/3.0.0-")


def test_nginx_reloads_as_usual_afterwards_and_the_package_database_agrees(story):
    assert story["reload"].rc == 0, story["reload"].stderr
    after = story["after_reload"]
    assert after["main_pid"] == after["master"] and after["masters"] == "1"
    assert "/usr/sbin/nginx" not in story["verify"], story["verify"]


def test_each_upgrade_is_in_the_apps_history(story):
    results = [(e["to_nginx"].split(" ")[0], e["result"]) for e in story["history"]]
    print(json.dumps(story["history"][-1]))
    assert (story["old"], "success") in results
    assert (story["new"], "success") in results
    assert ("/usr/local/lib/zdt-test/nginx-exits", "rolled_back") in results
    assert ("/usr/local/lib/zdt-test/nginx-refuses", "failed") in results
