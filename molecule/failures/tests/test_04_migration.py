"""4. A migration fails: the deploy stops before any switch."""

from __future__ import annotations

from conftest import FAST, assert_untouched, load, run, squash, stage, state, tail


def test_failed_migration_stops_before_the_switch(host, serving):
    with load(host, "failed-migration") as report:
        result = run("deploy.yml", *FAST, source=stage("2.0.0", "brokenmigration"))
    assert result.returncode != 0
    message = squash(result)
    assert 'failed at step "manage"' in message and "`migrate" in message, tail(result)
    assert "this migration is broken on purpose" in message
    assert_untouched(serving, state(host), report)
