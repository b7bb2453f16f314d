"""zdt_program: a program that failed to boot is reported with the app's own error."""

from __future__ import annotations

from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App
from ansible_collections.zerodowntime.web.plugins.modules import zdt_program

# Two workers crashed at import, then gunicorn's master halted: the app's exception is
# no longer among the last lines.
INTERLEAVED = [
    "RuntimeError: WEBXAMPLE_FAULT=import: simulated crash while importing the web app",
    "[INFO] Worker exiting (pid: 11)",
    "Traceback (most recent call last):",
    '  File "gunicorn/arbiter.py", line 405, in halt',
    "    self.stop()",
    '  File "gunicorn/arbiter.py", line 683, in reap_workers',
    "    raise HaltServer(reason, self.WORKER_BOOT_ERROR)",
    "gunicorn.errors.HaltServer: <HaltServer 'Worker failed to boot.' 3>",
    "[INFO] Worker exiting (pid: 12)",
    "[ERROR] Reason: Worker failed to boot.",
]


def test_the_apps_own_error_is_named_when_the_end_of_the_log_misses_it(monkeypatch):
    monkeypatch.setattr(zdt_program, "log_tail", lambda app, release, process, lines: INTERLEAVED)
    said = zdt_program.log_says(App("shop"), "2.0-a", "web")
    assert said.endswith("(the app's last error: RuntimeError: WEBXAMPLE_FAULT=import: simulated crash while "
                         "importing the web app)")
    assert "Reason: Worker failed to boot." in said


def test_an_error_already_in_the_end_is_not_repeated(monkeypatch):
    monkeypatch.setattr(zdt_program, "log_tail", lambda app, release, process, lines: INTERLEAVED[:3])
    said = zdt_program.log_says(App("shop"), "2.0-a", "web")
    assert said.count("RuntimeError") == 1 and "last error" not in said
    monkeypatch.setattr(zdt_program, "log_tail", lambda app, release, process, lines: [])
    assert zdt_program.log_says(App("shop"), "2.0-a", "web") == ""
