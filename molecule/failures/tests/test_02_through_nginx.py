"""2. Healthy on its socket, broken through nginx: caught by the preview before the switch,
or after it by the verification while the old release is nginx's backup (then rolled back)."""

from __future__ import annotations

import pytest
from conftest import BASE_ENV, FAST, assert_untouched, load, run, squash, stage, state, tail

# case: (name of the load, step that fails, port the failed check asked, how the deploy ends)
THROUGH_NGINX = {
    "proxied": ("proxied-before-switch", "preview", ":8099/", "Release {serving} kept serving; nothing was switched"),
    "public": ("public-after-switch", "switch", ":80/", "Rolled back: release {serving} serves again"),
}


@pytest.mark.parametrize("fault", list(THROUGH_NGINX))
def test_release_failing_through_nginx_never_fails_a_request(host, serving, fault):
    name, step, port, outcome = THROUGH_NGINX[fault]
    with load(host, name) as report:
        result = run("deploy.yml", *FAST, source=stage("2.0.0"), env={**BASE_ENV, "WEBXAMPLE_FAULT": fault})
    assert result.returncode != 0
    message = squash(result)
    assert f'failed at step "{step}"' in message and port in message, tail(result)
    assert outcome.format(serving=serving["serving"]) in message, tail(result)
    assert_untouched(serving, state(host), report)
