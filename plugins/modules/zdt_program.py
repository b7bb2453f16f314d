#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Run a release's programs under supervisor (gunicorn and the app's workers), or remove them."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_program
short_description: Run a release's programs under supervisor and wait until they are healthy, or remove them
author: zerodowntime.web contributors (@zerodowntime)
description:
  - C(state=started) writes the release's gunicorn config and one supervisor program file per program (the web
    program, gunicorn on the release's own socket, and the app's O(programs)), each with the collection's
    ownership marker, adds them one group at a time (never a reload of the others), and starts the web program
    and the workers. A C(singleton) program is written parked (not started); the handover starts it at the
    switch (M(zerodowntime.web.zdt_handover)).
  - Then it asks gunicorn on its own socket until it answers its health check, sending the site's Host and
    X-Forwarded-Proto, and waits until every worker has stayed up for its settle time. It gives up at once when a
    program exits or is FATAL, or when the health check gets the same 4xx or 3xx three times in a row, with the
    last lines of the program's log in the message.
  - C(state=absent) stops the release's programs gracefully (each gets its stop signal and stop wait) and removes
    them, their files and the release's socket.
  - Only programs whose file and marker are this app's are ever touched (see the C(zdt_layout) module_utils).
version_added: 0.1.0
options:
  app_name:
    description: Name of the application.
    type: str
    required: true
  app_root:
    description: Root of the application.
    type: path
    required: true
  release:
    description: Release id.
    type: str
    required: true
  state:
    description: Whether the release's programs run or are gone.
    type: str
    choices: [started, absent]
    default: started
  programs:
    description: >-
      (started) The release's programs, the web program first: each C(process) (name; C(web) for gunicorn),
      C(kind) (C(web), C(worker) or C(singleton)), C(command), C(numprocs), C(stopsignal), C(stopwaitsecs),
      C(startsecs) (the settle time), C(startretries), C(umask), C(environment), C(log_max_bytes),
      C(log_backups), C(extra).
    type: list
    elements: dict
    default: []
  user:
    description: (started) The app user (owns the socket directory and the gunicorn config).
    type: str
    default: ""
  group:
    description: (started) The app group.
    type: str
    default: ""
  socket_group:
    description: (started) Group of the socket directory and sockets (nginx's).
    type: str
    default: www-data
  gunicorn_conf:
    description: (started) Content of the release's gunicorn.conf.py.
    type: str
    default: ""
  health:
    description: >-
      (started) The health check on the release's socket: C(path), C(host) (the site's first server name),
      C(proto) (the X-Forwarded-Proto the site sends), C(timeout) (seconds, boot included), C(delay),
      C(check_release) (a JSON answer with a C(release) key must name the release).
    type: dict
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Start release 2.0.0-3f2a9c1d of webxample next to the serving one
  zerodowntime.web.zdt_program:
    app_name: webxample
    app_root: /srv/webxample
    release: 2.0.0-3f2a9c1d
    user: webxample
    group: webxample
    gunicorn_conf: "{{ lookup('ansible.builtin.template', 'gunicorn.conf.py.j2') }}"
    programs:
      - process: web
        kind: web
        command: /srv/webxample/releases/2.0.0-3f2a9c1d/with-env gunicorn --config gunicorn.conf.py webxample.wsgi:application
        stopwaitsecs: 75
      - process: worker
        kind: worker
        command: /srv/webxample/releases/2.0.0-3f2a9c1d/with-env python -m webxample process_jobs
        startsecs: 3
    health: {path: /health, host: www.example.com, proto: http, timeout: 60}
"""

RETURN = r"""
timings:
  description: Seconds to start the programs, until the health check passed and until the workers settled.
  type: dict
  returned: when state is started
  sample: {start: 0.05, health: 1.8, settle: 3.0}
changes:
  description: What had to change (socket directory, gunicorn config, program files).
  type: list
  returned: when state is started
removed:
  description: Programs removed.
  type: list
  returned: when state is absent
"""

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import directory, read, write_atomic
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_http import get_unix, redirect_hint, release_in_health
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import WEB, App, LayoutError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_lock import Lock
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_owner import Owner, OwnerError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_supervisor import (
    Supervisor,
    SupervisorError,
    is_active,
    log_tail,
    remove_programs,
    render,
)

DOWN = ("FATAL", "EXITED", "BACKOFF", "STOPPED")


# A Python exception's last line ("RuntimeError: ..."), the app's own error, unlike gunicorn's
# HaltServer that follows it when workers fail to boot.
_EXCEPTION = re.compile(r"^\s*(?:[a-z_]\w*\.)*[A-Z]\w*: ")


def log_says(app: App, release: str, process: str) -> str:
    """The end of the program's log and, when it is not in that end (several workers
    crashed, then gunicorn's master: their tracebacks interleave), the app's last exception."""
    lines = log_tail(app, release, process, 60)
    if not lines:
        return ""
    end = lines[-8:]
    errors = [line.strip() for line in lines if _EXCEPTION.match(line) and "HaltServer" not in line]
    said = f" Its log ({app.program_log(release, process)}) ends: " + " | ".join(end)
    if errors and not any(errors[-1] in line for line in end):
        said += f" (the app's last error: {errors[-1]})"
    return said


def wait_healthy(module: AnsibleModule, app: App, supervisor: Supervisor, release: str, result: dict) -> None:
    health = module.params["health"]
    path, host, proto = health.get("path", "/health"), health.get("host", "localhost"), health.get("proto", "http")
    timeout, delay = float(health.get("timeout", 60)), float(health.get("delay", 0.2))
    socket_path, program = app.socket(release), app.program(release)
    deadline = time.monotonic() + timeout
    same, last = 0, None
    while True:
        answer = get_unix(socket_path, path, host, proto, timeout=min(timeout, 5))
        named = release_in_health(answer) if answer.status == 200 else ""
        if answer.status == 200 and (not health.get("check_release", True) or named in ("", release)):
            return
        key = (answer.status, answer.header("location"))
        same = same + 1 if key == last and 300 <= answer.status < 500 else 1
        last = key
        state = supervisor.state(program)
        if state in DOWN:
            why = f"its program {program} is {state} before answering"
            break
        if same >= 3:
            why = f"GET {path} with Host: {host} answered {answer.describe()} three times in a row"
            if answer.status == 400:
                why += (f". The app refuses the Host header {host!r}: add it to the app's allowed hosts (Django's "
                        "ALLOWED_HOSTS), or set deploy_server_names so that its first name is one the app allows")
            elif answer.status == 404:
                why += ": is deploy_health_path a page the app serves?"
            why += redirect_hint(answer)
            break
        if time.monotonic() >= deadline:
            why = (f"GET {path} on {socket_path} answered {answer.describe()}"
                   + (f" from release {named}" if named else "")
                   + f" until the {timeout:g} s health timeout; its program is {state or 'unknown'}")
            break
        time.sleep(delay)
    module.fail_json(msg=f"release {release} did not pass its health check: {why}.{log_says(app, release, WEB)}",
                     **result)


def wait_settled(module: AnsibleModule, app: App, supervisor: Supervisor, release: str, specs: list[dict],
                 result: dict) -> None:
    """Every worker must reach RUNNING, which supervisor grants once it stayed up for its startsecs."""
    workers = [s for s in specs if s.get("kind") == "worker"]
    if not workers:
        return
    deadline = time.monotonic() + max(int(s.get("startsecs", 1)) for s in workers) + 30
    waiting = {s["process"] for s in workers}
    while waiting:
        for process in sorted(waiting):
            state = supervisor.state(app.program(release, process))
            if state == "RUNNING":
                waiting.discard(process)
            elif state in DOWN:
                module.fail_json(msg=f"release {release}'s program {app.program(release, process)} is {state}: it did "
                                     f"not stay up for its settle time.{log_says(app, release, process)}", **result)
        if waiting and time.monotonic() >= deadline:
            module.fail_json(msg=f"release {release}'s programs {', '.join(sorted(waiting))} did not settle in time",
                             **result)
        time.sleep(0.2)


def started(module: AnsibleModule, app: App, result: dict) -> None:
    params, release = module.params, module.params["release"]
    specs = params["programs"]
    if not specs or specs[0].get("process") != WEB:
        module.fail_json(msg="programs must start with the web program (process: web)")
    try:
        owner = Owner(params["user"], params["group"])
        socket_gid = owner.group_id(params["socket_group"])
    except OwnerError as error:
        if module.check_mode:  # a first run in check mode: the app user does not exist yet
            result["changed"] = True
            return
        module.fail_json(msg=str(error))
    gunicorn_conf = f"{app.release(release)}/gunicorn.conf.py"
    existing = {p["process"]: p for p in app.programs() if p["release"] == release}
    wanted = {}
    for spec in specs:
        # Workers run from the start; a singleton keeps its state (the handover starts it at the switch).
        active = spec.get("kind") != "singleton" or is_active(existing.get(spec["process"], {}).get("text", ""))
        wanted[spec["process"]] = render(app, release, spec, active)
    changes, diffs = [], []
    st = os.stat(app.run) if os.path.isdir(app.run) else None
    if st is None or (st.st_uid, st.st_gid, st.st_mode & 0o7777) != (owner.uid, socket_gid, 0o750):
        changes.append("socket directory")
    if os.path.isdir(app.release(release)) and read(gunicorn_conf) != params["gunicorn_conf"]:
        changes.append("gunicorn config")
    for process, text in wanted.items():
        path = app.program_conf(release, process)
        before = read(path)
        if before != text:
            changes.append(f"program {app.program(release, process)}")
            diffs.append({"before_header": path, "after_header": path, "before": before or "", "after": text})
    doomed = [p for process, p in existing.items() if process not in wanted]
    changes += [f"program {p['program']} removed" for p in doomed]
    result.update(changed=bool(changes), changes=changes)
    if module._diff and diffs:
        result["diff"] = diffs
    if module.check_mode:
        return
    Lock(app).hold_work()
    clock = time.monotonic()
    try:
        supervisor = Supervisor()
        if doomed:
            remove_programs(app, supervisor, doomed)
        directory(app.run, 0o750, owner.uid, socket_gid)
        if "gunicorn config" in changes:
            write_atomic(gunicorn_conf, params["gunicorn_conf"], 0o644, owner.uid, owner.gid)
        for process, text in wanted.items():
            path = app.program_conf(release, process)
            if read(path) != text:
                write_atomic(path, text, 0o644)
            name = app.program(release, process)
            if supervisor.update(name):
                result["changed"] = True
            if is_active(text) and supervisor.state(name) not in ("STARTING", "RUNNING", "BACKOFF"):
                supervisor.start(name)
                result["changed"] = True
        result["timings"] = {"start": round(time.monotonic() - clock, 2)}
        if params["health"]:
            clock = time.monotonic()
            wait_healthy(module, app, supervisor, release, result)
            result["timings"]["health"] = round(time.monotonic() - clock, 2)
        clock = time.monotonic()
        wait_settled(module, app, supervisor, release, specs, result)
        result["timings"]["settle"] = round(time.monotonic() - clock, 2)
    except SupervisorError as error:
        module.fail_json(msg=str(error), **result)


def absent(module: AnsibleModule, app: App, result: dict) -> None:
    programs = [p for p in app.programs() if p["release"] == module.params["release"]]
    result.update(changed=bool(programs), removed=[p["program"] for p in programs])
    if module.check_mode or not programs:
        return
    try:
        remove_programs(app, Supervisor(), programs)
    except SupervisorError as error:
        module.fail_json(msg=str(error), **result)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "release": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["started", "absent"], "default": "started"},
            "programs": {"type": "list", "elements": "dict", "default": []},
            "user": {"type": "str", "default": ""},
            "group": {"type": "str", "default": ""},
            "socket_group": {"type": "str", "default": "www-data"},
            "gunicorn_conf": {"type": "str", "default": ""},
            "health": {"type": "dict"},
        },
        required_if=[("state", "started", ("programs", "user", "group"))],
        supports_check_mode=True,
    )
    try:
        app = App(module.params["app_name"], module.params["app_root"])
        app.release(module.params["release"])
    except LayoutError as error:
        module.fail_json(msg=str(error))
    result = {"changed": False}
    if module.params["state"] == "started":
        started(module, app, result)
    else:
        absent(module, app, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
