"""The standby window's warm migration check: one process started with the standby's code
answers each connection from the database as it is then (a stand-in Django here: its
migration files are fixed, its database a JSON file the test changes)."""

from __future__ import annotations

import json
import os
import sys
import textwrap

from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_django

FAKE_DJANGO = {
    "django/__init__.py": "",
    "django/db/__init__.py": textwrap.dedent("""
        class Connection:
            closed = 0
            def close(self):
                Connection.closed += 1
        connections = {"default": Connection()}
        """),
    "django/db/migrations/__init__.py": "",
    "django/db/migrations/loader.py": textwrap.dedent("""
        class Migration:
            def __init__(self, replaces=()):
                self.replaces = list(replaces)
        class Graph:
            def leaf_nodes(self):
                return [("pages", "0003_jobs"), ("auth", "0012_user")]
        class MigrationLoader:
            def __init__(self, connection, ignore_no_migrations=False):
                self.disk_migrations = {("pages", "0001_initial"): Migration(),
                                        ("pages", "0003_jobs"): Migration(replaces=[("pages", "0002_old")]),
                                        ("auth", "0012_user"): Migration()}
                self.graph = Graph()
        """),
    "django/db/migrations/recorder.py": textwrap.dedent("""
        import json
        class MigrationRecorder:
            def __init__(self, connection):
                pass
            def applied_migrations(self):
                with open("db.json") as handle:
                    return {tuple(key.split(".")): None for key in json.load(handle)}
        """),
    # The release's management command: `manage.py shell -c CODE` runs CODE, as Django's does.
    "manage.py": "import sys\nassert sys.argv[1:3] == ['shell', '-c']\nexec(sys.argv[3], {'__name__': '__main__'})\n",
    "with-env": '#!/bin/sh\nexec "$@"\n',
}


def release(tmp_path, applied: list[str]) -> str:
    path = tmp_path / "releases" / "1.0.0"
    for name, text in FAKE_DJANGO.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    (path / "with-env").chmod(0o755)
    (path / "db.json").write_text(json.dumps(applied))
    return str(path)


def test_the_warm_check_asks_the_database_each_time_and_knows_squashed_migrations(tmp_path):
    path = release(tmp_path, ["pages.0001_initial", "pages.0002_old", "auth.0012_user"])
    socket_path = str(tmp_path / "migrations.sock")
    process = zdt_django.serve_unknown_migrations(path, f"{sys.executable} manage.py", None, socket_path)
    try:
        assert oct(os.stat(socket_path).st_mode & 0o777) == "0o600"
        # Answered once the standby's code is loaded; a migration it replaced counts as known.
        assert zdt_django.ask_unknown_migrations(socket_path, path, timeout=30) == (
            [], {"pages": "0003_jobs", "auth": "0012_user"})
        # A newer release applied a migration: the next answer has it.
        (tmp_path / "releases" / "1.0.0" / "db.json").write_text(
            json.dumps(["pages.0001_initial", "pages.0003_jobs", "pages.0004_greeting_lang"]))
        unknown, _leaves = zdt_django.ask_unknown_migrations(socket_path, path, timeout=30)
        assert unknown == ["pages.0004_greeting_lang"]
        # Another release's check is not this one's answer.
        assert zdt_django.ask_unknown_migrations(socket_path, str(tmp_path / "releases" / "2.0.0")) is None
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_no_warm_check_is_no_answer(tmp_path):
    path = release(tmp_path, [])
    assert zdt_django.ask_unknown_migrations(str(tmp_path / "none.sock"), path) is None
    # A socket nobody answers on (the helper that made it is gone).
    import socket

    stale = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(stale)
    assert zdt_django.ask_unknown_migrations(stale, path) is None


def test_a_check_that_fails_is_no_answer(tmp_path):
    path = release(tmp_path, [])
    os.unlink(os.path.join(path, "db.json"))  # the database cannot be read
    socket_path = str(tmp_path / "migrations.sock")
    process = zdt_django.serve_unknown_migrations(path, f"{sys.executable} manage.py", None, socket_path)
    try:
        assert zdt_django.ask_unknown_migrations(socket_path, path, timeout=30) is None
    finally:
        process.terminate()
        process.wait(timeout=10)
