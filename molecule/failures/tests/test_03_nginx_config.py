"""3. An invalid nginx config is refused by nginx -t and never loaded."""

from __future__ import annotations

import json

from conftest import FAST, assert_untouched, load, run, squash, stage, state, tail


def nginx_workers(host) -> str:
    """The pids of nginx's workers: a reload replaces them all."""
    return host.run("pgrep -f '^nginx: worker process' | sort").stdout


def test_invalid_nginx_config_is_never_loaded(host, serving):
    workers = nginx_workers(host)
    with load(host, "invalid-nginx") as report:
        result = run("deploy.yml", *FAST, "-e", json.dumps({"nginx_upstream_extra_config": "not_a_directive on;",
                                                            "deploy_release_config": {"case": "invalid-nginx"}}),
                     source=stage("2.0.0"))
    assert result.returncode != 0
    message = squash(result)
    assert 'failed at step "preview"' in message and "nginx -t refused" in message, tail(result)
    assert "unknown directive" in message and "not_a_directive" in message, tail(result)
    assert f"Release {serving['serving']} kept serving; nothing was switched" in message
    assert nginx_workers(host) == workers, "nginx was reloaded"
    assert_untouched(serving, state(host), report)
