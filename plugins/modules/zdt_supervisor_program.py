#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Run a release's gunicorn under supervisor, or stop releases' programs: one round trip."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_supervisor_program
short_description: Start one release's supervisor program, or stop others and schedule a standby's end
description:
  - C(state=started) writes the release's gunicorn config and supervisor program (when they differ),
    creates the socket directory, adds this program only (C(supervisorctl update NAME), never a reload
    of the others) and starts it if it is not running.
  - C(state=absent) stops programs gracefully (gunicorn drains its workers on TERM), removes their
    configuration, their group from supervisor, their socket and any standby timer. It stops O(releases),
    or every program of O(app_name) but O(keep) and O(standby) when O(keep) is given.
  - With O(standby) and O(standby_seconds), the standby's program keeps running and a transient systemd
    timer runs O(retire_script) when its window ends (a rollback in the window is only an nginx switch).
  - It talks to supervisord over its unix socket (XML-RPC, what C(supervisorctl) does), without starting
    a C(supervisorctl) process per step.
  - No builtin module drives supervisor, and community.general's cannot update a single program.
options:
  state:
    type: str
    choices: [started, absent]
    default: started
    description: Whether the program of O(release) runs, or the programs named by O(releases)/O(keep) are gone.
  app_name:
    type: str
    required: true
    description: Application; programs are C(APP-RELEASE).
  app_root:
    type: path
    required: true
    description: Root of the application; sockets are in C(run/).
  release:
    type: str
    description: (started) Release whose program runs.
  releases:
    type: list
    elements: str
    default: []
    description: (absent) Releases whose programs go.
  keep:
    type: list
    elements: str
    description: (absent) Releases whose programs stay; every other program of the app goes.
  conf_dir:
    type: path
    default: /etc/supervisor/conf.d
    description: Directory of supervisor program files.
  health:
    type: dict
    description: >-
      (started) Then ask the release on its own socket until it answers: C(path), C(host), C(timeout) (seconds,
      boot included), C(delay) (between attempts), C(check_release) (a JSON answer with a C(release) key must
      name O(release)).
  supervisor_socket:
    type: path
    default: /var/run/supervisor.sock
    description: supervisord's unix socket (C([unix_http_server] file)).
  gunicorn_conf:
    type: str
    default: ""
    description: (started) Content of the release's gunicorn.conf.py.
  program_conf:
    type: str
    default: ""
    description: (started) Content of the supervisor program file.
  user:
    type: str
    default: ""
    description: (started) Owner of the socket directory and of gunicorn.conf.py.
  group:
    type: str
    default: ""
    description: (started) Group of gunicorn.conf.py.
  socket_group:
    type: str
    default: www-data
    description: (started) Group of the socket directory (nginx's).
  standby:
    type: str
    default: ""
    description: (absent) Release whose program stands by for O(standby_seconds), then retires.
  standby_seconds:
    type: int
    default: 0
    description: (absent) Length of the standby window.
  retire_script:
    type: path
    default: /usr/local/libexec/zerodowntime/zdt_retire.sh
    description: (absent) Script the timer runs at the end of the window.
  retire_script_content:
    type: str
    default: ""
    description: (absent) Content of that script.
"""

RETURN = r"""
timings:
  description: (started) Seconds to start the program and until it answered its health check.
  type: dict
  returned: when state is started
stopped:
  description: (absent) Releases whose program was stopped and removed.
  type: list
  returned: when state is absent
window:
  description: (absent) The systemd unit that ends the standby window, when one was opened.
  type: str
  returned: when state is absent
"""

import glob
import grp
import http.client
import json
import os
import pwd
import re
import socket
import subprocess
import time
import xmlrpc.client

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import read, write_atomic

UNIT_PREFIX = "zdt-standby-"
# supervisor's XML-RPC fault codes (supervisor/xmlrpc.py)
BAD_NAME = 10
NOT_RUNNING = 70


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.socket_path)


class UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.socket_path = path

    def make_connection(self, host: str) -> UnixConnection:  # noqa: ARG002 - xmlrpc's signature
        return UnixConnection(self.socket_path)


class Supervisor:
    """The calls `supervisorctl update NAME`, `start` and `stop` make, for one program group."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        path = module.params["supervisor_socket"]
        self.rpc = xmlrpc.client.ServerProxy("http://localhost", transport=UnixTransport(path)).supervisor

    def call(self, what: str, method: str, *args: object) -> object:
        try:
            return getattr(self.rpc, method)(*args)
        except xmlrpc.client.Fault:
            raise
        except (OSError, xmlrpc.client.Error) as error:
            self.module.fail_json(msg=f"supervisord did not answer {what}: {error}")
        return None

    def update(self, group: str) -> str:
        """Add, change or remove GROUP to match the config files; the others are left alone."""
        added, changed, removed = self.call("reloadConfig", "reloadConfig")[0]
        if group in removed or group in changed:
            self.stop(group)
            self.call("removeProcessGroup", "removeProcessGroup", group)
        if group in added or group in changed:
            self.call("addProcessGroup", "addProcessGroup", group)
        return "added" if group in added else "changed" if group in changed else "removed" if group in removed else ""

    def state(self, group: str) -> str:
        try:
            return self.call("getProcessInfo", "getProcessInfo", group)["statename"]
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == BAD_NAME:
                return ""
            raise

    def start(self, group: str) -> None:
        try:
            self.call("startProcessGroup", "startProcessGroup", group, False)
        except xmlrpc.client.Fault as fault:
            self.module.fail_json(msg=f"supervisor could not start {group}: {fault.faultString}")

    def stop(self, group: str) -> bool:
        """Stop GROUP gracefully and wait for it; False when it was not running or is unknown."""
        try:
            stopped = self.call("stopProcessGroup", "stopProcessGroup", group, True)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode in (BAD_NAME, NOT_RUNNING):
                return False
            self.module.fail_json(msg=f"supervisor could not stop {group}: {fault.faultString}")
        return bool(stopped)


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True)


class App:
    def __init__(self, params: dict) -> None:
        self.name, self.root, self.conf_dir = params["app_name"], params["app_root"].rstrip("/"), params["conf_dir"]

    def program(self, release: str) -> str:
        return f"{self.name}-{release}"

    def conf(self, release: str) -> str:
        return os.path.join(self.conf_dir, f"{self.program(release)}.conf")

    def socket(self, release: str) -> str:
        return os.path.join(self.root, "run", f"{release}.sock")

    def unit(self, release: str) -> str:
        return f"{UNIT_PREFIX}{self.name}-{release}"

    def releases(self) -> list[str]:
        pattern = re.compile("^" + re.escape(self.name) + r"-(.+)\.conf$")
        names = (os.path.basename(p) for p in glob.glob(os.path.join(self.conf_dir, f"{self.name}-*.conf")))
        return sorted(m.group(1) for m in map(pattern.match, names) if m)


def cancel_windows(app: App, releases: list[str]) -> None:
    units = [app.unit(r) + suffix for r in releases for suffix in (".timer", ".service")]
    if units and os.path.isdir("/run/systemd/system"):
        run(["systemctl", "stop", *units])  # rc 5: no such unit, which is fine


def stop(supervisor: Supervisor, app: App, release: str) -> bool:
    program, conf = app.program(release), app.conf(release)
    changed = supervisor.stop(program)
    if os.path.lexists(conf):
        os.unlink(conf)
        changed = True
    changed = supervisor.update(program) == "removed" or changed
    if os.path.lexists(app.socket(release)):
        os.unlink(app.socket(release))
    cancel_windows(app, [release])
    return changed


def started(module: AnsibleModule, app: App, result: dict) -> None:
    params, release = module.params, module.params["release"]
    try:
        user, group = pwd.getpwnam(params["user"]), grp.getgrnam(params["group"])
        socket_gid = grp.getgrnam(params["socket_group"]).gr_gid
    except KeyError as missing:
        if module.check_mode:  # a first run in check mode: the app user does not exist yet
            result["changed"] = True
            return
        module.fail_json(msg=f"no such user or group on this host: {missing}")
    run_dir = os.path.join(app.root, "run")
    release_path = os.path.join(app.root, "releases", release)
    gunicorn_conf = os.path.join(release_path, "gunicorn.conf.py")
    changes = []
    if not os.path.isdir(run_dir):
        changes.append("socket directory")
    elif (os.stat(run_dir).st_uid, os.stat(run_dir).st_gid, os.stat(run_dir).st_mode & 0o7777) != (
            user.pw_uid, socket_gid, 0o750):
        changes.append("socket directory")
    if read(gunicorn_conf) != params["gunicorn_conf"]:
        changes.append("gunicorn config")
    if read(app.conf(release)) != params["program_conf"]:
        changes.append("supervisor program")
    result.update(changed=bool(changes), changes=changes)
    if module.check_mode:
        return
    if "socket directory" in changes:
        os.makedirs(run_dir, exist_ok=True)
        os.chown(run_dir, user.pw_uid, socket_gid)
        os.chmod(run_dir, 0o750)
    if "gunicorn config" in changes:
        write_atomic(gunicorn_conf, params["gunicorn_conf"], 0o644, user.pw_uid, group.gr_gid)
    if "supervisor program" in changes:
        write_atomic(app.conf(release), params["program_conf"], 0o644)
    clock = time.monotonic()
    supervisor = Supervisor(module)
    program = app.program(release)
    # Like `supervisorctl update NAME`: this program only, never a reload of the others.
    if supervisor.update(program):
        result["changed"] = True
    # A new program starts by itself (autostart); waiting here for startsecs would
    # only delay the health check that follows, which waits for the boot anyway.
    if supervisor.state(program) not in ("STARTING", "RUNNING", "BACKOFF"):
        supervisor.start(program)
        result["changed"] = True
    result["timings"] = {"start": round(time.monotonic() - clock, 2)}
    if module.params["health"]:
        clock = time.monotonic()
        wait_healthy(module, app, supervisor, result)
        result["timings"]["health"] = round(time.monotonic() - clock, 2)


def ask(socket_path: str, host: str, path: str, timeout: float) -> tuple[int, str]:
    """GET PATH over the release's unix socket: (status, body), status 0 when nothing answered."""
    connection = UnixConnection(socket_path)
    connection.timeout = timeout
    try:
        connection.connect()
        connection.sock.settimeout(timeout)
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read(4096).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as error:
        return 0, str(error)
    finally:
        connection.close()


def wait_healthy(module: AnsibleModule, app: App, supervisor: Supervisor, result: dict) -> None:
    health, release = module.params["health"], module.params["release"]
    path, host = health.get("path", "/health"), health.get("host", "localhost")
    timeout, delay = float(health.get("timeout", 60)), float(health.get("delay", 0.2))
    deadline = time.monotonic() + timeout
    while True:
        status, body = ask(app.socket(release), host, path, min(timeout, 5))
        named = ""
        if status == 200 and health.get("check_release", True):
            try:
                named = json.loads(body).get("release", release) if body.lstrip().startswith("{") else release
            except ValueError:
                named = release
        if status == 200 and (not health.get("check_release", True) or named == release):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(delay)
    answer = (f"answered {status}" + (f" from release {named}" if named else "") if status
              else f"gave no answer ({body})")
    module.fail_json(msg=f"release {release} did not pass its health check within {timeout:g} s: GET {path} on "
                         f"{app.socket(release)} {answer}; its program is {supervisor.state(app.program(release))}",
                     **result)


def absent(module: AnsibleModule, app: App, result: dict) -> None:
    params = module.params
    standby = params["standby"] if params["standby_seconds"] > 0 else ""
    if params["keep"] is not None:
        doomed = [r for r in app.releases() if r not in params["keep"] + [standby]]
    else:
        doomed = [r for r in params["releases"] if r]
    opens = bool(standby) and os.path.exists(app.conf(standby))
    result.update(stopped=doomed, window=app.unit(standby) if opens else "")
    if module.check_mode:
        result["changed"] = bool(doomed) or opens
        return
    supervisor = Supervisor(module)
    for release in doomed:
        result["changed"] = stop(supervisor, app, release) or result["changed"]
    if not opens:
        return
    script = params["retire_script"]
    if read(script) != params["retire_script_content"]:
        os.makedirs(os.path.dirname(script), mode=0o755, exist_ok=True)
        write_atomic(script, params["retire_script_content"], 0o755)
    # Windows that no longer apply: the kept releases' (a rollback inside a window
    # must not stop the release it brought back) and the standby's old one.
    cancel_windows(app, [r for r in params["keep"] or [] if r] + [standby])
    proc = run(["systemd-run", "--collect", f"--unit={app.unit(standby)}", f"--on-active={params['standby_seconds']}s",
                "--timer-property=AccuracySec=1s",
                f"--description=zerodowntime standby window of {app.name} {standby}",
                script, app.root, standby, app.program(standby), app.conf(standby), app.socket(standby)])
    if proc.returncode != 0:
        module.fail_json(msg=f"systemd-run failed to schedule the end of the standby window: {proc.stderr.strip()}",
                         **result)
    result["changed"] = True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["started", "absent"], "default": "started"},
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "release": {"type": "str"},
            "releases": {"type": "list", "elements": "str", "default": []},
            "keep": {"type": "list", "elements": "str"},
            "conf_dir": {"type": "path", "default": "/etc/supervisor/conf.d"},
            "health": {"type": "dict"},
            "supervisor_socket": {"type": "path", "default": "/var/run/supervisor.sock"},
            "gunicorn_conf": {"type": "str", "default": ""},
            "program_conf": {"type": "str", "default": ""},
            "user": {"type": "str", "default": ""},
            "group": {"type": "str", "default": ""},
            "socket_group": {"type": "str", "default": "www-data"},
            "standby": {"type": "str", "default": ""},
            "standby_seconds": {"type": "int", "default": 0},
            "retire_script": {"type": "path", "default": "/usr/local/libexec/zerodowntime/zdt_retire.sh"},
            "retire_script_content": {"type": "str", "default": ""},
        },
        required_if=[("state", "started", ("release", "user", "group"))],
        supports_check_mode=True,
    )
    app = App(module.params)
    result = {"changed": False}
    if module.params["state"] == "started":
        started(module, app, result)
    else:
        absent(module, app, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
