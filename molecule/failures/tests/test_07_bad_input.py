"""7. Bad input is refused before the build and before anything on the host changes, with
a message naming the variable."""

from __future__ import annotations

import json

import pytest
from conftest import APP_ROOT, host_snapshot, run, squash, stage, state, tail

BAD_INPUT = {
    "release_id_with_slash": ({"deploy_release_id": "2.0.0/evil"}, "deploy_release_id"),
    "release_id_with_dotdot": ({"deploy_release_id": ".."}, "deploy_release_id"),
    "release_id_with_space": ({"deploy_release_id": "2.0.0 evil"}, "deploy_release_id"),
    "release_id_empty": ({"deploy_release_id": ""}, "deploy_release_id"),
    "release_id_trailing_newline": ({"deploy_release_id": "2.0.0\n"}, "deploy_release_id"),
    "app_name_trailing_newline": ({"deploy_app_name": "redapp\n"}, "deploy_app_name"),
    "env_key_trailing_newline": ({"deploy_env": {"WEBXAMPLE_X\n": "1"}}, "deploy_env"),
    "missing_required_variable": ({"deploy_wsgi_app": None}, "deploy_wsgi_app"),
    "wrong_type_int": ({"deploy_workers": "many"}, "deploy_workers"),
    "workers_zero": ({"deploy_workers": 0}, "deploy_workers"),
    "workers_too_many": ({"deploy_workers": 1000}, "deploy_workers"),
    "wrong_type_dict": ({"deploy_env": "SECRET=1"}, "deploy_env"),
    "server_name_with_semicolon": ({"deploy_server_names": ["evil;"]}, "deploy_server_names"),
    "health_path_without_slash": ({"deploy_health_path": "health"}, "deploy_health_path"),
    "health_path_with_space": ({"deploy_health_path": "/he alth"}, "deploy_health_path"),
    "verify_path_with_space": ({"deploy_verify_paths": ["/ok", "/a b"]}, "deploy_verify_paths[1]"),
    "program_named_web": ({"deploy_programs": [{"name": "web", "command": "x", "kind": "worker"}]}, "deploy_programs"),
    "program_bad_kind": ({"deploy_programs": [{"name": "w", "command": "x", "kind": "daemon"}]}, "deploy_programs"),
    "unknown_hook": ({"deploy_hooks": {"before_lunch": "x.yml"}}, "deploy_hooks.before_lunch"),
    # A variable of a role the deploy includes (checked once against that role's spec).
    "included_role_wrong_type_int": ({"gunicorn_supervisor_threads": "four"}, "gunicorn_supervisor_threads"),
    "included_role_wrong_type_bool": ({"nginx_upstream_verify_enabled": "maybe"}, "nginx_upstream_verify_enabled"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_refused_before_anything_changes(host, serving, case):
    extra, variable = BAD_INPUT[case]
    snapshot = host_snapshot(host)
    result = run("deploy.yml", "-e", json.dumps(extra), source=stage("2.0.0"))
    assert result.returncode != 0
    assert variable in squash(result), tail(result)
    # Refused by the preflight step: the build never started (no wheel built, no seconds lost).
    assert "build | Build the wheelhouse" not in result.stdout, tail(result)
    assert (state(host), host_snapshot(host)) == (serving, snapshot)
    assert not host.file("/srv/redapp\n").exists


def test_preview_port_held_by_another_service_is_refused_before_anything_changes(host, serving):
    host.run_expect([0], "systemd-run --unit=zdt-port-squatter python3 -m http.server --bind 127.0.0.1 8199")
    try:
        snapshot = host_snapshot(host)
        result = run("deploy.yml", "-e", "deploy_preview_port=8199", source=stage("2.0.0"))
        assert result.returncode != 0
        message = squash(result)
        assert "deploy_preview_port 8199 is already in use" in message and "http.server" in message, tail(result)
        assert (state(host), host_snapshot(host)) == (serving, snapshot)
        assert not host.file(f"{APP_ROOT}/releases").is_symlink
    finally:
        host.run("systemctl stop zdt-port-squatter")
