# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""supervisord, as the collection drives it: one program file per program of a release,
written with its ownership marker, added and removed one program group at a time over
supervisord's XML-RPC socket (what ``supervisorctl update NAME`` does, without starting a
``supervisorctl`` process per step).

A program is *active* (``autostart=true``: it runs, and comes back after a reboot) or
*parked* (``autostart=false``, stopped: its definition stays so that a rollback can
start it again in one step). The only place that stops or removes a program of an app
is this module; the modules and the host-side helper both call it.

Pure standard library: the host-side helper imports it too.
"""
from __future__ import annotations

import http.client
import os
import re
import socket
import time
import xmlrpc.client

from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import read, tail, write_atomic
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import SUPERVISOR_LOG_DIR, WEB, App

SOCKET = "/var/run/supervisor.sock"
# supervisor's XML-RPC fault codes (supervisor/xmlrpc.py); SHUTDOWN_STATE answers any call while
# supervisord stops (a restart of supervisor).
SHUTDOWN_STATE = 6
BAD_NAME = 10
ALREADY_STARTED = 60
NOT_RUNNING = 70
RUNNING_STATES = ("STARTING", "RUNNING", "BACKOFF", "STOPPING")
FAILED_STATES = ("FATAL", "EXITED", "BACKOFF", "UNKNOWN")


class SupervisorError(Exception):
    pass


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class _Transport(xmlrpc.client.Transport):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.socket_path = path

    def make_connection(self, host: str) -> UnixConnection:  # noqa: ARG002 - xmlrpc's signature
        return UnixConnection(self.socket_path)


def _escape(value: str) -> str:
    """A value in a supervisor file: '%' would start one of its expansions."""
    return str(value).replace("%", "%%")


def render(app: App, release: str, spec: dict, active: bool) -> str:
    """The program file of one program of RELEASE, marker first.

    SPEC: process, kind (web, worker, singleton), command, directory, user, numprocs,
    stopsignal, stopwaitsecs, startsecs, startretries, umask, environment (dict),
    log_max_bytes, log_backups, extra (dict of more settings).
    """
    process, kind = spec.get("process", WEB), spec.get("kind", WEB)
    name = app.program(release, process)
    numprocs = int(spec.get("numprocs", 1))
    environment = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted((spec.get("environment") or {}).items()))
    lines = [
        app.marker(release, process, kind),
        f"; {kind} program {process!r} of release {release} of {app.name}; written by zerodowntime.web.",
        f"[program:{name}]",
        f"command={_escape(spec['command'])}",
        f"directory={spec.get('directory') or app.release(release)}",
        f"user={spec['user']}",
    ]
    if numprocs > 1:
        lines += [f"numprocs={numprocs}", "process_name=%(program_name)s_%(process_num)02d"]
    if environment:
        lines.append(f"environment={environment}")
    lines += [
        f"autostart={'true' if active else 'false'}",
        "autorestart=true",
        f"startsecs={int(spec.get('startsecs', 1))}",
        f"startretries={int(spec.get('startretries', 3))}",
        f"umask={spec.get('umask', '027')}",
        f"stopsignal={spec.get('stopsignal', 'TERM')}",
        f"stopwaitsecs={int(spec.get('stopwaitsecs', 40))}",
        "stopasgroup=true",
        "killasgroup=true",
        "redirect_stderr=true",
        f"stdout_logfile={SUPERVISOR_LOG_DIR}/%(program_name)s{'_%(process_num)02d' if numprocs > 1 else ''}.log",
        f"stdout_logfile_maxbytes={spec.get('log_max_bytes', '10MB')}",
        f"stdout_logfile_backups={int(spec.get('log_backups', 5))}",
    ]
    lines += [f"{k}={_escape(v)}" for k, v in sorted((spec.get("extra") or {}).items())]
    return "\n".join(lines) + "\n"


_AUTOSTART = re.compile(r"^autostart=(true|false)$", re.MULTILINE)


def is_active(text: str) -> bool:
    match = _AUTOSTART.search(text or "")
    return bool(match) and match.group(1) == "true"


def with_active(text: str, active: bool) -> str:
    return _AUTOSTART.sub(f"autostart={'true' if active else 'false'}", text, count=1)


def log_tail(app: App, release: str, process: str = WEB, lines: int = 12) -> list[str]:
    """The last lines of the program's log (its first process's, when it has several)."""
    name = app.program(release, process)
    for candidate in (name, f"{name}_00"):
        found = tail(f"{SUPERVISOR_LOG_DIR}/{candidate}.log", lines)
        if found:
            return found
    return []


def worst_state(infos: list[dict]) -> str:
    """One word for a group's processes (INFOS): RUNNING when every one runs, else the worst
    state seen, '' when there is none."""
    names = {i["statename"] for i in infos}
    if not names:
        return ""
    for worst in ("FATAL", "BACKOFF", "EXITED", "UNKNOWN", "STOPPING", "STARTING", "STOPPED"):
        if worst in names:
            return worst
    return "RUNNING"


def settling(infos: list[dict]) -> bool:
    """Whether a process of the group is being stopped, or started for the first time by this
    supervisord (a restart of supervisor, a program just added): its health is not telling yet.
    One started again after it stopped (a crash) is not settling."""
    return any(i["statename"] == "STOPPING" or (i["statename"] == "STARTING" and not i.get("stop")) for i in infos)


class Supervisor:
    """The calls `supervisorctl update NAME`, `start`, `stop` and `status` make, per program group."""

    def __init__(self, path: str = SOCKET) -> None:
        self.path = path
        self.rpc = xmlrpc.client.ServerProxy("http://localhost", transport=_Transport(path)).supervisor

    def call(self, method: str, *args: object) -> object:
        try:
            return getattr(self.rpc, method)(*args)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == SHUTDOWN_STATE:
                raise SupervisorError(f"supervisord is shutting down ({method}): it is being stopped or "
                                      "restarted, with every program it supervises") from fault
            raise
        except (OSError, xmlrpc.client.Error) as error:
            raise SupervisorError(
                f"supervisord did not answer ({method}: {error}): it is not running or {self.path} is not its "
                "socket, so no program of any app is supervised (a site whose gunicorn is gone answers 502). "
                "Start it (systemctl start supervisor) or deploy with deploy_install_packages=true.") from error

    def running(self) -> bool:
        try:
            return self.call("getState")["statename"] == "RUNNING"
        except SupervisorError:
            return False

    def update(self, group: str) -> str:
        """Add, change or remove GROUP to match the files (this group only, never the others)."""
        try:
            added, changed, removed = self.call("reloadConfig")[0]
        except xmlrpc.client.Fault as fault:
            raise SupervisorError(f"supervisord could not read its configuration: {fault.faultString}") from fault
        if group in removed or group in changed:
            self.stop([group])
            self.call("removeProcessGroup", group)
        if group in added or group in changed:
            self.call("addProcessGroup", group)
        return "added" if group in added else "changed" if group in changed else "removed" if group in removed else ""

    def states(self, groups: list[str] | None = None) -> dict[str, list[dict]]:
        """GROUP -> its processes' info (statename, pid, start ...); every group when GROUPS is None."""
        found: dict[str, list[dict]] = {}
        for info in self.call("getAllProcessInfo"):
            if groups is None or info["group"] in groups:
                found.setdefault(info["group"], []).append(info)
        return found

    def state(self, group: str) -> str:
        """One word for the group: RUNNING when every process runs, else the worst state seen, '' when unknown."""
        return worst_state(self.states([group]).get(group, []))

    def start(self, group: str) -> None:
        try:
            self.call("startProcessGroup", group, False)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != ALREADY_STARTED:
                raise SupervisorError(f"supervisor could not start {group}: {fault.faultString}") from fault

    def stop(self, groups: list[str], timeout: float = 3600) -> list[str]:
        """Stop GROUPS gracefully, all at once (each gets its own stopwaitsecs before supervisor
        sends SIGKILL); return those that were running."""
        stopping = []
        for group in groups:
            try:
                self.call("stopProcessGroup", group, False)
                stopping.append(group)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode not in (BAD_NAME, NOT_RUNNING):
                    raise SupervisorError(f"supervisor could not stop {group}: {fault.faultString}") from fault
        deadline = time.monotonic() + timeout
        while stopping and time.monotonic() < deadline:
            live = self.states(stopping)
            if not any(i["statename"] in RUNNING_STATES for infos in live.values() for i in infos):
                break
            time.sleep(0.1)
        return stopping

    def remove(self, group: str) -> bool:
        try:
            self.call("removeProcessGroup", group)
            return True
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == BAD_NAME:
                return False
            raise SupervisorError(f"supervisor could not remove {group}: {fault.faultString}") from fault


def write_program(app: App, release: str, spec: dict, active: bool) -> bool:
    """Write the program file when it differs; True when it changed."""
    path = app.program_conf(release, spec.get("process", WEB))
    text = render(app, release, spec, active)
    if read(path) == text:
        return False
    write_atomic(path, text, 0o644)
    return True


def set_active(app: App, supervisor: Supervisor, program: dict, active: bool) -> bool:
    """Park or activate one of the app's programs (a marker dict from App.programs()); True when changed.
    Activating starts it (autostart); parking stops it gracefully first."""
    if is_active(program["text"]) == active:
        if active and supervisor.state(program["program"]) in ("", "STOPPED", "EXITED", "FATAL"):
            supervisor.update(program["program"])
            supervisor.start(program["program"])
            return True
        return False
    if not active:
        supervisor.stop([program["program"]])
    write_atomic(program["path"], with_active(program["text"], active), 0o644)
    supervisor.update(program["program"])
    if active:
        supervisor.start(program["program"])
    return True


def remove_programs(app: App, supervisor: Supervisor, programs: list[dict]) -> list[str]:
    """Stop PROGRAMS gracefully (all at once), remove their files and groups, and the web
    programs' sockets. Returns the program names removed."""
    names = [p["program"] for p in programs]
    supervisor.stop(names)
    for program in programs:
        if os.path.lexists(program["path"]):
            os.unlink(program["path"])
        supervisor.update(program["program"])
        supervisor.remove(program["program"])
        if program["process"] == WEB and os.path.lexists(app.socket(program["release"])):
            os.unlink(app.socket(program["release"]))
    return names
