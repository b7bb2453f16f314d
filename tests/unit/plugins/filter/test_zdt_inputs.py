"""The deploy's input checks: each problem names its variable."""

from __future__ import annotations

import pytest
from ansible_collections.zerodowntime.web.plugins.filter.zdt_inputs import zdt_input_problems, zdt_installer_problems

GOOD = {
    "deploy_app_name": "shop", "deploy_app_root": "/srv/shop", "deploy_user": "shop", "deploy_release_id": "auto",
    "deploy_source_path": "/src/shop", "deploy_source_git_repo": "", "deploy_env": {"SECRET": "a\nb 'c' $d"},
    "deploy_wsgi_app": "shop.wsgi:application", "deploy_server_names": ["shop.example.com", "*.example.com"],
    "deploy_health_path": "/health/", "deploy_verify_paths": ["/", "/about?x=1"], "deploy_static_dir": "var/static",
    "deploy_static_url": "/static/", "deploy_media_dir": "media", "deploy_media_url": "/media/", "deploy_workers": 4,
    "deploy_request_timeout": 60, "deploy_preview_port": 8099, "deploy_programs": [
        {"name": "worker", "command": "celery -A shop worker", "kind": "worker", "numprocs": 2}],
    "deploy_hooks": {"before_manage": "hooks/x.yml"}, "deploy_rollback_migrations": "refuse",
    "deploy_listen": 80, "deploy_listen_ipv4": True, "deploy_listen_ipv6": "false",
    "deploy_tls_certificate": "/etc/letsencrypt/live/shop/fullchain.pem",
    "deploy_tls_certificate_key": "/etc/letsencrypt/live/shop/privkey.pem", "deploy_tls_listen": 443,
    "deploy_tls_protocols": "TLSv1.2 TLSv1.3", "deploy_hsts_max_age": 31536000,
    "deploy_acme_webroot": "/var/www/letsencrypt",
}


def test_good_inputs_pass():
    assert zdt_input_problems(GOOD) == []


@pytest.mark.parametrize("change,named", [
    ({"deploy_app_name": "shop\n"}, "deploy_app_name"),
    ({"deploy_release_id": "2.0\n"}, "deploy_release_id"),
    ({"deploy_env": {"KEY\n": "1"}}, "deploy_env"),
    ({"deploy_server_names": ["evil;"]}, "deploy_server_names"),
    ({"deploy_server_names": []}, "deploy_server_names"),
    ({"deploy_health_path": "health"}, "deploy_health_path"),
    ({"deploy_verify_paths": ["/", "/a b"]}, "deploy_verify_paths[1]"),
    ({"deploy_workers": 0}, "deploy_workers"),
    ({"deploy_workers": 65}, "deploy_workers"),
    ({"deploy_preview_port": 70000}, "deploy_preview_port"),
    ({"deploy_static_dir": "../x"}, "deploy_static_dir"),
    ({"deploy_programs": [{"name": "web", "command": "x"}]}, "deploy_programs[0]"),
    ({"deploy_programs": [{"name": "w", "command": "x", "kind": "singleton", "numprocs": 2}]}, "deploy_programs[0]"),
    ({"deploy_hooks": {"before_lunch": "x.yml"}}, "deploy_hooks.before_lunch"),
    ({"deploy_source_path": ""}, "deploy_source_path"),
    ({"deploy_user": "root"}, "deploy_user"),
    ({"deploy_listen_ipv4": False, "deploy_listen_ipv6": False}, "deploy_listen_ipv4"),
    ({"deploy_tls_certificate_key": ""}, "deploy_tls_certificate_key"),
    ({"deploy_tls_certificate": "fullchain.pem"}, "deploy_tls_certificate"),
    ({"deploy_tls_certificate": "/etc/ssl/a;b.pem"}, "deploy_tls_certificate"),
    ({"deploy_acme_webroot": "/var/www/../etc"}, "deploy_acme_webroot"),
    ({"deploy_tls_protocols": "SSLv3"}, "deploy_tls_protocols"),
    ({"deploy_tls_listen": 80}, "deploy_tls_listen"),
    ({"deploy_listen": 0}, "deploy_listen"),
])
def test_each_problem_names_its_variable(change, named):
    problems = zdt_input_problems({**GOOD, **change})
    assert problems and any(named in p for p in problems), problems


@pytest.mark.parametrize(("extra", "named"), [
    ({"deploy_lb_drain": True}, "deploy_lb_drain needs deploy_lb_host"),
    ({"deploy_lb_host": "lb9", "deploy_lb_known": False}, "deploy_lb_host 'lb9' is not a host of the inventory"),
    ({"deploy_lb_drain_tasks": "drain.yml"}, "deploy_lb_drain_tasks and deploy_lb_restore_tasks go together"),
    ({"deploy_fleet_max_fail_percentage": 101}, "deploy_fleet_max_fail_percentage must be a whole number"),
    ({"deploy_canary_seconds": -1}, "deploy_canary_seconds must be a whole number"),
])
def test_load_balancer_and_fleet_inputs_are_named(extra, named):
    assert any(named in problem for problem in zdt_input_problems({**GOOD, **extra}))


def test_a_known_load_balancer_or_own_tasks_pass():
    assert zdt_input_problems({**GOOD, "deploy_lb_drain": True, "deploy_lb_host": "lb1", "deploy_lb_known": True}) == []
    assert zdt_input_problems({**GOOD, "deploy_lb_drain": True, "deploy_lb_drain_tasks": "d.yml",
                               "deploy_lb_restore_tasks": "r.yml"}) == []


UV = {"path": "/ctl/venv/bin/uv", "version": "0.13.9", "machine": "x86_64"}


def test_the_installer_pip_needs_nothing_from_the_controller():
    assert zdt_installer_problems("pip", {}) == []
    assert zdt_installer_problems("uv", UV, "x86_64") == []
    assert zdt_installer_problems("uv", UV, "") == []  # machine unknown: the artifact is the controller's kind


@pytest.mark.parametrize("uv,machine,says", [
    ({}, "x86_64", "the controller has no uv"),
    (None, "", "the controller has no uv"),
    (dict(UV, machine=""), "x86_64", "no Linux program"),
    (UV, "aarch64", "built for x86_64 and this host is aarch64"),
])
def test_uv_that_cannot_run_on_the_host_is_named_with_the_variable_and_the_way_out(uv, machine, says):
    problems = zdt_installer_problems("uv", uv, machine, "venv_release_installer")
    assert len(problems) == 1 and says in problems[0]
    assert problems[0].startswith("venv_release_installer is uv") and "venv_release_installer: pip" in problems[0]
    assert zdt_installer_problems("uv", uv, machine)[0].startswith("deploy_installer is uv")


def test_an_unknown_installer_is_named():
    assert zdt_installer_problems("conda", UV) == ["deploy_installer must be uv or pip, got 'conda'"]
