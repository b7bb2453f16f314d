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
import socket
import subprocess

# What a release's code knows: its migration files (a migration replaced by a squashed one
# the release has counts as known), and its leaf migration per app.
_KNOWN = r"""
import json
from django.db import connections
from django.db.migrations.loader import MigrationLoader
connection = connections["default"]
loader = MigrationLoader(connection, ignore_no_migrations=True)
known = set(loader.disk_migrations)
for migration in loader.disk_migrations.values():
    known.update(getattr(migration, "replaces", None) or [])
leaves = {}
for app, name in loader.graph.leaf_nodes():
    leaves[app] = name
"""

# Applied migrations (from the database) that this release's code has no file for.
_UNKNOWN = _KNOWN + r"""
unknown = sorted("%s.%s" % key for key in set(loader.applied_migrations) - known)
print("ZDT-MIGRATIONS " + json.dumps({"unknown": unknown, "leaves": leaves}))
"""

# The same question, asked many times of one process: the standby window's helper starts it
# as the window opens (the standby's code loaded once: its migration files never change),
# and each connection to the socket it inherited (file descriptor ZDT_MIGRATIONS_FD) gets
# one answer from the database as it is then. It ends when the helper does.
_SERVE = _KNOWN + r"""
import os, socket
from django.db.migrations.recorder import MigrationRecorder
connection.close()
listener = socket.socket(fileno=int(os.environ["ZDT_MIGRATIONS_FD"]))
listener.settimeout(5)
parent = os.getppid()
while os.getppid() == parent:
    try:
        client, _address = listener.accept()
    except socket.timeout:
        continue
    try:
        applied = set(MigrationRecorder(connection).applied_migrations())
        answer = {"release": os.getcwd(), "unknown": sorted("%s.%s" % key for key in applied - known),
                  "leaves": leaves}
    except Exception as error:
        answer = {"error": str(error)}
    finally:
        connection.close()
    try:
        client.sendall((json.dumps(answer) + "\n").encode())
    except OSError:
        pass
    client.close()
"""


class DjangoError(Exception):
    pass


def _command(release_path: str, manage_command: str, args: list[str], user: str | None,
             nice: int = 0) -> tuple[list[str], dict, object]:
    """argv, environment and pre-exec function of a management command of the release."""
    argv = ["./with-env", *shlex.split(manage_command), *args]
    account = None
    if user and os.geteuid() == 0:
        import pwd

        account = pwd.getpwnam(user)

    def preexec() -> None:
        if nice:
            os.nice(nice)
        if account is not None:
            os.initgroups(account.pw_name, account.pw_gid)
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": release_path}
    return argv, env, preexec if nice or account is not None else None


def _manage(release_path: str, manage_command: str, args: list[str], user: str | None) -> str:
    argv, env, preexec = _command(release_path, manage_command, args, user)
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


def serve_unknown_migrations(release_path: str, manage_command: str, user: str | None,
                             socket_path: str) -> subprocess.Popen:
    """Start the warm check of RELEASE_PATH on SOCKET_PATH (root's, 0600): a management
    command of the release, as USER at nice 19, that answers each connection with the
    applied migrations it does not know (ask_unknown_migrations). The caller stops it."""
    if os.path.lexists(socket_path):
        os.unlink(socket_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mask = os.umask(0o177)
    try:
        listener.bind(socket_path)
    finally:
        os.umask(mask)
    listener.listen(8)
    try:
        argv, env, preexec = _command(release_path, manage_command, ["shell", "-c", _SERVE], user, nice=19)
        env["ZDT_MIGRATIONS_FD"] = str(listener.fileno())
        return subprocess.Popen(argv, cwd=release_path, env=env, preexec_fn=preexec, pass_fds=(listener.fileno(),),
                                stdin=subprocess.DEVNULL)
    finally:
        listener.close()  # the child has its own copy


def ask_unknown_migrations(socket_path: str, release_path: str, timeout: float = 3.0) -> tuple[list[str], dict] | None:
    """What unknown_migrations answers, from the warm check of RELEASE_PATH on SOCKET_PATH;
    None when there is none, it is another release's, or it does not answer in time."""
    data = b""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout)
            client.connect(socket_path)
            while not data.endswith(b"\n"):
                chunk = client.recv(65536)
                if not chunk:
                    break
                data += chunk
        value = json.loads(data.decode("utf-8"))
    except (OSError, ValueError):
        return None
    if (not isinstance(value, dict) or value.get("release") != os.path.realpath(release_path)
            or not isinstance(value.get("unknown"), list)):
        return None
    return value["unknown"], value.get("leaves") or {}


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
