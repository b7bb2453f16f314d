"""1. The new release is unhealthy: it never takes traffic, and the deploy says why at once."""

from __future__ import annotations

import json
import time

import pytest
from conftest import (
    APP_ROOT,
    BASE_ENV,
    FAST,
    assert_untouched,
    load,
    program,
    release_of,
    run,
    squash,
    stage,
    state,
    tail,
)

# case: (env, extra args, step that must fail, texts the reason must contain)
UNHEALTHY = {
    "health_500": ({**BASE_ENV, "WEBXAMPLE_FAULT": "health"}, FAST, "start", ["answered 500"]),
    # Fails at once (no health timeout) with the program's own last log lines.
    "crash_at_import": ({**BASE_ENV, "WEBXAMPLE_FAULT": "import"}, [], "start",
                        ["before answering", "WEBXAMPLE_FAULT=import: simulated crash"]),
    # Settings fail fast: the first management command already stops the deploy.
    "missing_env_var": ({k: v for k, v in BASE_ENV.items() if k != "WEBXAMPLE_SECRET_KEY"}, FAST, "manage",
                        ["WEBXAMPLE_SECRET_KEY"]),
    # A program that runs but never binds its socket: the whole health timeout.
    "never_binds": (BASE_ENV, FAST + ["-e", json.dumps({"gunicorn_supervisor_command": "/bin/sh -c 'exec sleep 3600' zdt",
                                                        "deploy_release_config": {"case": "never-binds"}})],
                    "start", ["No such file or directory", "until the 10 s health timeout"]),
}


@pytest.mark.parametrize("case", list(UNHEALTHY))
def test_unhealthy_release_never_takes_traffic(host, serving, case):
    env, extra, step, reasons = UNHEALTHY[case]
    started = time.monotonic()
    with load(host, f"unhealthy-{case}") as report:
        result = run("deploy.yml", *extra, source=stage("2.0.0"), env=env)
    report["deploy_seconds"] = round(time.monotonic() - started, 1)
    assert result.returncode != 0
    message = squash(result)
    failed_release = release_of(message)
    assert failed_release and failed_release != serving["serving"], tail(result)
    assert f'failed at step "{step}"' in message, tail(result)
    for reason in reasons:
        assert reason in message, tail(result)
    assert f"Release {serving['serving']} kept serving" in message
    assert_untouched(serving, state(host), report)
    assert not host.file(f"{APP_ROOT}/releases/{failed_release}").exists
    assert not host.file(f"/etc/supervisor/conf.d/{program(failed_release)}.conf").exists
    if case == "crash_at_import":
        # The sandbox's health timeout is 90 s: giving up at once means well under it.
        assert report["deploy_seconds"] < 60, report
