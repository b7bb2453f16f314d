"""15. The traps a real Django app hits on its first deploy, caught before the switch with a
message that says what to change."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import BASE_ENV, FAST, STAGE, assert_untouched, load, run, squash, stage, state, tail

# /health as a view (after host validation and the HTTPS redirect), as most projects have it.
VIEW = {**BASE_ENV, "WEBXAMPLE_HEALTH_VIEW": "true"}
TRAPS = {
    # The Host the checks send is the first server name; here the app does not allow it.
    "host_not_allowed": (VIEW, {"deploy_server_names": ["www.example.test"]}, "start",
                         ["answered 400", "ALLOWED_HOSTS", "www.example.test"]),
    # Production settings that redirect to HTTPS, on a site that serves plain HTTP.
    "https_redirect": ({**VIEW, "WEBXAMPLE_SSL_REDIRECT": "true"}, {}, "start",
                       ["301 redirecting to https://", "redirects to HTTPS"]),
    # collectstatic writes static/ but the site would serve staticfiles/: every asset 404s.
    "static_dir_wrong": (BASE_ENV, {"deploy_static_dir": "staticfiles"}, "preview",
                         ["static asset", "/static/webxample/site.css answered 404"]),
}


@pytest.mark.parametrize("case", list(TRAPS))
def test_trap_is_caught_before_the_switch(host, serving, case):
    env, extra, step, texts = TRAPS[case]
    with load(host, f"trap-{case}") as report:
        result = run("deploy.yml", *FAST, "-e", json.dumps(extra), source=stage("2.0.0"), env=env)
    assert result.returncode != 0
    message = squash(result)
    assert f'failed at step "{step}"' in message, tail(result)
    for text in texts:
        assert text in message, tail(result)
    assert f"Release {serving['serving']} kept serving" in message
    assert_untouched(serving, state(host), report)


def test_a_build_that_fails_says_why(host, serving):
    source = STAGE / "webxample-2.0.0-badrequirement"
    if not source.exists():
        shutil.copytree(stage("2.0.0"), source)
        (source / "requirements.txt").write_text("Django>=5.2,<5.3\nno-such-package-zdt>=1\n")
    result = run("deploy.yml", "-e", "deploy_source_type=source", source=source)
    assert result.returncode != 0
    message = squash(result)
    assert "building the release artifact failed" in message and "no-such-package-zdt" in message, tail(result)
    # uv resolves for the target (pip when deploy_build_for_targets is false): either says the package is unknown.
    assert any(why in message for why in ("not found in the package registry", "No matching distribution",
                                          "Could not find a version")), tail(result)
    assert state(host) == serving
