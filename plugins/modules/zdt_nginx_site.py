#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Apply nginx files for one app in one step: validate, install, reload, check."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_nginx_site
short_description: Install validated nginx files, reload once, and check the result through nginx
description:
  - Writes each file whose content differs, after its C(validate) command accepts a candidate copy,
    removes the files listed in O(absent), sets C(worker_shutdown_timeout) in the main configuration,
    and reloads nginx (C(nginx -s reload), never a restart) when anything changed or O(force_reload) is set.
  - Then, optionally, asks nginx on this host until a release answers (O(check)), and waits until the
    workers of the previous configuration have exited (O(drain_timeout)).
  - One task instead of a template, a file, a lineinfile, a command and uri tasks. Each of those costs
    a round trip, and a deploy runs this several times.
options:
  files:
    description: Files to have, each C(path), C(content), C(mode) and C(validate) (a command with C(%s)).
    type: list
    elements: dict
    default: []
  absent:
    description: Files to remove.
    type: list
    elements: path
    default: []
  main_conf:
    description: Main nginx configuration, where C(worker_shutdown_timeout) is set.
    type: path
    default: /etc/nginx/nginx.conf
  worker_shutdown_timeout:
    description: Seconds old workers may take to finish their requests after a reload (0 leaves the main configuration alone).
    type: int
    default: 0
  main_validate:
    description: Command with C(%s) that validates a candidate main configuration.
    type: str
    default: ""
  force_reload:
    description: Reload even when no file changed.
    type: bool
    default: false
  check:
    description: >-
      Ask nginx on 127.0.0.1 until C(release) answers C(health_path) (C(retries) times, C(delay) apart),
      then ask each of C(paths) once; a page must answer 2xx or 3xx from that release.
      Keys C(port), C(host), C(release), C(header), C(health_path), C(paths), C(retries), C(delay), C(extra_headers).
    type: dict
  drain_timeout:
    description: After a reload, wait up to this many seconds for the old workers to exit (0 does not wait).
    type: int
    default: 0
"""

RETURN = r"""
reloaded:
  description: Whether nginx was reloaded.
  type: bool
  returned: always
checked:
  description: What each checked URL answered (C(url), C(status), C(release)).
  type: list
  returned: when check is set
"""

import os
import re
import shlex
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import read, write_atomic

OK_STATUS = (200, 201, 204, 301, 302, 303, 304, 307, 308)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - urllib's signature
        return None


def validate(module: AnsibleModule, command: str, content: str) -> None:
    """Run COMMAND on a candidate copy of CONTENT (outside nginx's include globs)."""
    if not command:
        return
    handle, candidate = tempfile.mkstemp(prefix="zdt-nginx-", suffix=".candidate")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        argv = [candidate if word == "%s" else word for word in shlex.split(command)]
        proc = subprocess.run(argv, capture_output=True, text=True)
    finally:
        os.unlink(candidate)
    if proc.returncode != 0:
        module.fail_json(msg=f"nginx -t refused the new configuration: {(proc.stderr or proc.stdout).strip()}",
                         rc=proc.returncode, stderr=proc.stderr, stdout=proc.stdout)


def with_shutdown_timeout(text: str, seconds: int) -> str:
    line = f"worker_shutdown_timeout {seconds}s;"
    pattern = re.compile(r"^[ \t]*worker_shutdown_timeout\s[^\n]*$", re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(line, text, count=1)
    pid = re.search(r"^[ \t]*pid\s[^\n]*\n", text, re.MULTILINE)
    at = pid.end() if pid else 0
    return text[:at] + line + "\n" + text[at:]


def fetch(url: str, host: str, header: str, extra_headers: dict, timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host, **extra_headers})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers.get(header, "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get(header, "") if error.headers else ""
    except (urllib.error.URLError, OSError) as error:
        return 0, f"(no answer: {getattr(error, 'reason', error)})"


def check_release(spec: dict) -> tuple[list[dict], str]:
    """Ask nginx until the release answers its health path, then each page once: (answers, error)."""
    base = f"http://127.0.0.1:{spec['port']}"
    release, header = str(spec["release"]), spec.get("header", "X-Release")
    host, extra = spec.get("host", "localhost"), spec.get("extra_headers") or {}
    retries, delay = int(spec.get("retries", 20)), float(spec.get("delay", 0.5))
    checked = []
    url = base + spec.get("health_path", "/health")
    # Right after `nginx -s reload` the old workers may still answer for a few
    # milliseconds: ask again soon, then every `delay`, for retries * delay seconds.
    deadline, pause = time.monotonic() + retries * delay, 0.02
    while True:
        status, answered = fetch(url, host, header, extra, 5)
        if (status == 200 and answered == release) or time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, delay)
    checked.append({"url": url, "status": status, "release": answered})
    if status != 200 or answered != release:
        return checked, (f"{url} answered {status or 'nothing'} from release {answered or '(none)'}, "
                         f"expected 200 from {release}")
    failures = []
    for path in spec.get("paths") or []:
        url = base + path
        status, answered = fetch(url, host, header, extra, 10)
        checked.append({"url": url, "status": status, "release": answered})
        if status not in OK_STATUS or answered != release:
            failures.append(f"{url} answered {status or 'nothing'} from release {answered or '(none)'}")
    if failures:
        return checked, "; ".join(failures) + f" (expected 2xx or 3xx from {release})"
    return checked, ""


def serving_workers() -> set[int]:
    """Pids of the nginx workers that accept connections (not those shutting down)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                title = handle.read().rstrip(b"\0")
        except OSError:
            continue
        if title == b"nginx: worker process":
            pids.add(int(entry))
    return pids


def reload(module: AnsibleModule, result: dict) -> None:
    """`nginx -s reload`, then wait until no worker of the old configuration accepts
    connections: until then a new connection may still reach an old worker."""
    before = serving_workers()
    proc = subprocess.run(["nginx", "-s", "reload"], capture_output=True, text=True)
    if proc.returncode != 0:
        module.fail_json(msg=f"nginx -s reload failed: {proc.stderr.strip()}", **result)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = serving_workers()
        if now and not now & before:
            return
        time.sleep(0.01)
    module.fail_json(msg="nginx did not replace its workers within 10 s of the reload (see its error log)", **result)


def drain(seconds: int) -> bool:
    """Wait until no nginx worker of an older configuration is left; True when none is."""
    deadline = time.monotonic() + seconds
    while True:
        proc = subprocess.run(["pgrep", "-f", "nginx: worker process is shutting down"], capture_output=True)
        if proc.returncode == 1:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "default": []},
            "absent": {"type": "list", "elements": "path", "default": []},
            "main_conf": {"type": "path", "default": "/etc/nginx/nginx.conf"},
            "worker_shutdown_timeout": {"type": "int", "default": 0},
            "main_validate": {"type": "str", "default": ""},
            "force_reload": {"type": "bool", "default": False},
            "check": {"type": "dict"},
            "drain_timeout": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    params = module.params
    writes = []  # (path, content, mode, validate command)
    if params["worker_shutdown_timeout"] > 0:
        current = read(params["main_conf"])
        if current is None:
            module.fail_json(msg=f"{params['main_conf']} not found: is nginx installed?")
        wanted = with_shutdown_timeout(current, params["worker_shutdown_timeout"])
        if wanted != current:
            writes.append((params["main_conf"], wanted, 0o644, params["main_validate"]))
    for entry in params["files"]:
        if read(entry["path"]) != entry["content"]:
            writes.append((entry["path"], entry["content"], int(str(entry.get("mode", "0644")), 8),
                           entry.get("validate", "")))
    removals = [path for path in params["absent"] if os.path.lexists(path)]
    changed = bool(writes or removals)
    reload_needed = changed or params["force_reload"]
    result = {"changed": changed, "reloaded": False,
              "written": [w[0] for w in writes], "removed": removals}
    if module.check_mode:
        module.exit_json(**result)

    clock = time.monotonic()
    for _path, content, _mode, command in writes:
        validate(module, command, content)
    result["timings"] = {"validate": round(time.monotonic() - clock, 2)}
    for path, content, mode, _command in writes:
        write_atomic(path, content, mode)
    for path in removals:
        os.unlink(path)
    if reload_needed:
        clock = time.monotonic()
        reload(module, result)
        result.update(reloaded=True, changed=True)
        result["timings"]["reload"] = round(time.monotonic() - clock, 2)
    clock = time.monotonic()
    if params["check"]:
        result["checked"], error = check_release(params["check"])
        result["timings"]["check"] = round(time.monotonic() - clock, 2)
        if error:
            module.fail_json(msg=error, **result)
    if params["drain_timeout"] > 0:
        clock = time.monotonic()
        result["drained"] = drain(params["drain_timeout"])
        result["timings"]["drain"] = round(time.monotonic() - clock, 2)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
