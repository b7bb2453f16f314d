# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""What the collection asks a Django release: which applied migrations it does not know
(before a rollback), and how to unapply them. Run through the release's own with-env and
management command, as the app user. Pure standard library: the host-side helper uses it.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess

# Applied migrations (from the database) that this release's code has no file for; a
# migration replaced by a squashed one the release has counts as known.
_UNKNOWN = r"""
import json
from django.db import connections
from django.db.migrations.loader import MigrationLoader
loader = MigrationLoader(connections["default"], ignore_no_migrations=True)
known = set(loader.disk_migrations)
for migration in loader.disk_migrations.values():
    known.update(getattr(migration, "replaces", None) or [])
leaves = {}
for app, name in loader.graph.leaf_nodes():
    leaves[app] = name
unknown = sorted("%s.%s" % key for key in set(loader.applied_migrations) - known)
print("ZDT-MIGRATIONS " + json.dumps({"unknown": unknown, "leaves": leaves}))
"""


class DjangoError(Exception):
    pass


def _manage(release_path: str, manage_command: str, args: list[str], user: str | None) -> str:
    argv = ["./with-env", *shlex.split(manage_command), *args]
    preexec = None
    if user and os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam(user)

        def preexec() -> None:
            os.initgroups(user, entry.pw_gid)
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": release_path}
    proc = subprocess.run(argv, cwd=release_path, capture_output=True, text=True, env=env, preexec_fn=preexec, check=False)
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        raise DjangoError(f"`{' '.join(args[:2])}` in {release_path} failed (rc {proc.returncode}): "
                          + " ".join(lines[-3:]))
    return proc.stdout


def unknown_migrations(release_path: str, manage_command: str, user: str | None) -> tuple[list[str], dict]:
    """(applied migrations RELEASE does not know, its leaf migration per app)."""
    out = _manage(release_path, manage_command, ["shell", "-c", _UNKNOWN], user)
    for line in out.splitlines():
        if line.startswith("ZDT-MIGRATIONS "):
            value = json.loads(line.split(" ", 1)[1])
            return value["unknown"], value["leaves"]
    raise DjangoError(f"the migration check printed nothing in {release_path}")


def unapply(serving_path: str, manage_command: str, user: str | None, unknown: list[str],
            target_leaves: dict) -> list[str]:
    """Unapply UNKNOWN with the serving release's code (it has their files), back to the
    target's leaf of each app ('zero' for an app the target does not have). Returns the
    commands run."""
    done = []
    for app in sorted({name.split(".", 1)[0] for name in unknown}):
        target = target_leaves.get(app, "zero")
        _manage(serving_path, manage_command, ["migrate", app, target, "--noinput", "--no-color"], user)
        done.append(f"migrate {app} {target}")
    return done
