# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The one lock of an app on a host, for every holder: a deploy, a rollback, the
standby window's helper, an nginx upgrade.

- Taken with an atomic ``mkdir`` of ``/var/lib/zerodowntime/<app>/lock`` and a random
  token recorded in its ``owner.json``; released only by the holder of that token.
- Who holds it is recorded (action, user, controller and its pid, release, start time),
  with the host's boot identity and, for a holder that lives on the host, its pid and
  that process's start time. So a lock can be told dead without guessing: a holder from
  a previous boot, or a host process that is gone, is recovered automatically (the
  caller records it as interrupted); a holder that is alive is never broken, not even
  with ``break_lock``; only a holder this host cannot check (a deploy whose controller
  is another machine, with none of its modules running here) needs ``break_lock``.
- Inspecting and changing the lock happens under a flock of ``lock.guard``, so two
  takers can never both judge a holder dead and both take over.
- Every module of the holder that works on the host holds ``work.lock`` (a flock) while
  it runs: a module left running by a controller that died keeps the lock alive, and a
  new holder waits for it before it touches the releases.

Pure standard library: the host-side helper imports it too.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager

from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import directory, read, write_atomic
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App

OWNER = "owner.json"
_WORK_FDS: list[int] = []  # kept open (and flocked) until the process exits


def boot_id() -> str:
    """Identity of this boot: the kernel's boot id and PID 1's start time (a container that
    restarts keeps the kernel but gets a new PID 1)."""
    kernel = (read("/proc/sys/kernel/random/boot_id") or "").strip()
    return f"{kernel}/{process_start(1) or ''}"


def process_start(pid: int) -> str | None:
    """Start time of process PID (clock ticks since boot), None when there is no such process."""
    stat = read(f"/proc/{int(pid)}/stat")
    if stat is None:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


class LockHeld(Exception):
    """The lock is held by someone else (or could not be broken); ``holder`` and ``state`` say why."""

    def __init__(self, holder: dict, state: str, why: str, refused_break: bool = False) -> None:
        super().__init__(why)
        self.holder, self.state, self.why, self.refused_break = holder, state, why, refused_break

    def describe(self, app: str) -> str:
        h = self.holder
        since = h.get("started_at", "?")
        if h.get("action") == "nginx_upgrade":
            who = f"the nginx upgrade by {h.get('user', '?')}@{h.get('controller', '?')}"
        else:
            who = (f"the {h.get('action', 'deploy')} of release {h.get('release') or '(not named yet)'} by "
                   f"{h.get('user', '?')}@{h.get('controller', '?')}")
        if h.get("pid"):
            who += f" (pid {h['pid']} on this host)"
        elif h.get("controller_pid"):
            who += f" (ansible-playbook pid {h['controller_pid']} on {h.get('controller', '?')})"
        text = f"the deploy lock of {app} is held by {who} since {since}"
        if self.state == "alive":
            text += f", which is alive: {self.why}."
            if self.refused_break:
                text += " deploy_break_lock was refused: a live holder is never broken."
            else:
                text += " Wait for it to finish."
        else:
            text += (". This host cannot tell whether it is alive (its controller is another machine and none "
                     "of its modules is running here). If that deploy is dead (no ansible-playbook of it runs "
                     f"on {h.get('controller', '?')}), run again with -e deploy_break_lock=true.")
        return text


class Lock:
    def __init__(self, app: App) -> None:
        self.app = app
        self.dir = app.lock
        self.guard_path = f"{app.state}/lock.guard"
        self.work_path = f"{app.state}/work.lock"

    # --- reading ------------------------------------------------------------------------
    def holder(self) -> dict | None:
        """The holder's record; {} when the lock exists without one; None when it is free."""
        if not os.path.isdir(self.dir):
            return None
        try:
            value = json.loads(read(f"{self.dir}/{OWNER}") or "{}")
        except ValueError:
            value = {}
        return value if isinstance(value, dict) else {}

    def working(self) -> bool:
        """Whether a module of the holder is running on this host (it holds work.lock)."""
        try:
            descriptor = os.open(self.work_path, os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)
        return False

    def liveness(self, holder: dict | None, dead_token: str = "") -> tuple[str, str]:
        """('alive' | 'dead' | 'unknown', why)."""
        if holder is None:
            return "dead", "the lock was released"
        if not holder:
            try:
                age = time.time() - os.stat(self.dir).st_mtime
            except OSError:
                return "dead", "the lock was released"
            return ("dead", "it records no holder (its taker died at once)") if age > 30 else ("alive", "being taken")
        if holder.get("boot") and holder["boot"] != boot_id():
            return "dead", "its holder ran before this host restarted"
        pid = holder.get("pid")
        if pid:
            if process_start(int(pid)) == holder.get("pid_start"):
                return "alive", f"process {pid} is running"
            return "dead", f"its process {pid} is gone"
        if self.working():
            return "alive", "one of its modules is still running on this host"
        if dead_token and holder.get("token") == dead_token:
            return "dead", f"its ansible-playbook (pid {holder.get('controller_pid')}) is gone"
        return "unknown", ""

    # --- changing -----------------------------------------------------------------------
    @contextmanager
    def guarded(self):
        directory(self.app.state, 0o700, 0, 0)
        descriptor = os.open(self.guard_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _remove(self) -> None:
        stale = f"{self.dir}.stale-{uuid.uuid4().hex[:8]}"
        os.rename(self.dir, stale)
        shutil.rmtree(stale, ignore_errors=True)

    def take(self, owner: dict, *, wait: float = 0.0, break_lock: bool = False, dead_token: str = "",
             host_process: bool = False) -> dict:
        """Take the lock; returns {token, recovered: [holders found dead], broken: holder or None}.
        Waits up to WAIT seconds while a live holder is a helper on this host, or the module of a
        deploy whose controller is dead (DEAD_TOKEN) still runs. Raises LockHeld."""
        deadline = time.monotonic() + wait
        recovered: list[dict] = []
        broken = None
        while True:
            with self.guarded():
                try:
                    os.mkdir(self.dir, 0o700)
                except FileExistsError:
                    holder = self.holder()
                    state, why = self.liveness(holder, dead_token)
                    if state == "dead":
                        self._remove()
                        recovered.append({**(holder or {}), "why": why})
                        continue
                    if state == "unknown" and break_lock:
                        self._remove()
                        broken = holder
                        continue
                    error = LockHeld(holder or {}, state, why, refused_break=break_lock and state == "alive")
                    # Worth waiting for: a helper on this host (it takes seconds), or the
                    # module of a deploy whose controller is known dead (it will end).
                    waitable = bool((holder or {}).get("pid")) or bool(
                        dead_token and (holder or {}).get("token") == dead_token)
                else:
                    token = uuid.uuid4().hex
                    record = {**owner, "token": token, "boot": boot_id()}
                    if host_process:
                        record.update(pid=os.getpid(), pid_start=process_start(os.getpid()))
                    write_atomic(f"{self.dir}/{OWNER}", json.dumps(record, sort_keys=True) + "\n", 0o600)
                    return {"token": token, "recovered": recovered, "broken": broken}
            if state != "alive" or not waitable or time.monotonic() >= deadline:
                raise error
            time.sleep(0.5)

    def update(self, token: str, **fields: object) -> bool:
        """Add FIELDS to the holder's record (e.g. the release, once it is named) if TOKEN holds it."""
        with self.guarded():
            holder = self.holder()
            if not holder or holder.get("token") != token:
                return False
            write_atomic(f"{self.dir}/{OWNER}", json.dumps({**holder, **fields}, sort_keys=True) + "\n", 0o600)
            return True

    def release(self, token: str) -> bool:
        """Release the lock if TOKEN holds it; False (nothing done) when it is not ours."""
        with self.guarded():
            holder = self.holder()
            if holder is None or holder.get("token") != token:
                return False
            self._remove()
            return True

    def held_by(self, token: str) -> bool:
        holder = self.holder()
        return bool(holder) and holder.get("token") == token

    def hold_work(self) -> None:
        """Mark this process as working for the holder until it exits; first wait for a module
        of an earlier holder (its controller died, not its module) to finish."""
        directory(self.app.state, 0o700, 0, 0)
        descriptor = os.open(self.work_path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        _WORK_FDS.append(descriptor)
