#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Apply an app's nginx files in one step: test, install, reload, check, drain."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_nginx_site
short_description: Install an app's nginx files after nginx -t accepts them, reload once, check the release through nginx
author: zerodowntime.web contributors (@zerodowntime)
description:
  - Tests the configuration as it would be with every change at once (O(files) written, O(absent) removed,
    C(worker_shutdown_timeout) raised in the main configuration) with C(nginx -t) on a temporary copy of the
    main configuration, before any live file changes; then writes the files that differ, removes O(absent), and
    reloads nginx (C(nginx -s reload), never a restart) when anything changed or O(force_reload) is set, waiting
    until no worker of the old configuration accepts connections.
  - Then, optionally, asks nginx until the release answers its health path, each verify page and the static
    assets those pages reference (O(check)), and waits until the old workers have exited (O(drain_timeout)).
  - With O(save_before), the content the first of O(files) had before is kept in that file (root only); the
    deploy's rescue and the standby helper put it back to go back to the release that served.
version_added: 0.1.0
options:
  files:
    description: Files to have, each C(path), C(content) and C(mode).
    type: list
    elements: dict
    default: []
  absent:
    description: Files to remove.
    type: list
    elements: path
    default: []
  main_conf:
    description: Main nginx configuration.
    type: path
    default: /etc/nginx/nginx.conf
  worker_shutdown_timeout:
    description: Seconds old workers may take to finish their requests after a reload; raised, never lowered (0 leaves it).
    type: int
    default: 0
  force_reload:
    description: Reload even when no file changed.
    type: bool
    default: false
  save_before:
    description: Where to keep the previous content of the first of O(files) when it changes.
    type: path
  check:
    description: >-
      Ask nginx until C(release) answers C(health_path), then each of C(paths) once and, with C(assets), the
      static assets under C(static_url) they reference. Keys C(address), C(port), C(tls), C(host), C(release),
      C(header), C(health_path), C(paths), C(timeout), C(delay), C(extra_headers), C(assets), C(static_url).
    type: dict
  drain_timeout:
    description: After a reload, wait up to this many seconds for the old workers to exit (0 does not wait).
    type: int
    default: 0
  record:
    description: >-
      Once the release passed O(check), write C(content) (a dict, as JSON) to C(path) when it differs: the app's
      record of how its site is checked, which the nginx binary upgrade uses for every app on the host. Not
      reported as a change.
    type: dict
  save_drained:
    description: >-
      Once the release passed O(check), write C(content) (the site as it will be when the release that served
      before stops standing by: the first of O(files) without its backup) to C(path), root only, when it
      differs; an empty C(content) removes C(path). The standby window's helper puts it in place at the
      window's end. Not reported as a change.
    type: dict
  mark:
    description:
      - Files whose sizes to return (RV(marks)) as they are just before the reload, with the host's time of it
        (RV(reloaded_at)), so that a later reader of an access log starts at the switch.
    type: list
    elements: path
    default: []
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
- name: Switch webxample's site to release 2.0.0-3f2a9c1d and check it through nginx
  zerodowntime.web.zdt_nginx_site:
    files:
      - path: /etc/nginx/conf.d/webxample.conf
        content: "{{ lookup('ansible.builtin.template', 'site.conf.j2') }}"
    absent: [/etc/nginx/conf.d/webxample.preview.conf]
    worker_shutdown_timeout: 70
    save_before: /var/lib/zerodowntime/webxample/site.before.conf
    check: {port: 80, host: www.example.com, release: 2.0.0-3f2a9c1d, health_path: /health, paths: [/]}
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
  sample: [{url: "http://127.0.0.1:80/health", status: 200, release: 2.0.0-3f2a9c1d}]
reloaded_at:
  description: The host's time (seconds since the epoch) just before nginx was asked to reload.
  type: float
  returned: when reloaded
  sample: 1796232301.3
marks:
  description: The size of each file of O(mark), in its order, just before the reload (0 for a missing file).
  type: list
  elements: int
  returned: when reloaded
  sample: [183204]
timings:
  description: Seconds of the test, the reload, the check and the drain.
  type: dict
  returned: when not in check mode
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_nginx
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import directory, read, write_atomic


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "default": []},
            "absent": {"type": "list", "elements": "path", "default": []},
            "main_conf": {"type": "path", "default": "/etc/nginx/nginx.conf"},
            "worker_shutdown_timeout": {"type": "int", "default": 0},
            "force_reload": {"type": "bool", "default": False},
            "save_before": {"type": "path"},
            "check": {"type": "dict"},
            "drain_timeout": {"type": "int", "default": 0},
            "record": {"type": "dict"},
            "save_drained": {"type": "dict"},
            "mark": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    changes: dict[str, str | None] = {}  # path -> new content, None to remove
    if params["worker_shutdown_timeout"] > 0:
        current = read(params["main_conf"])
        if current is None:
            module.fail_json(msg=f"{params['main_conf']} not found: is nginx installed?")
        wanted = zdt_nginx.with_shutdown_timeout(current, params["worker_shutdown_timeout"])
        if wanted != current:
            changes[params["main_conf"]] = wanted
    modes = {}
    for entry in params["files"]:
        if read(entry["path"]) != entry["content"]:
            changes[entry["path"]] = entry["content"]
            modes[entry["path"]] = int(str(entry.get("mode", "0644")), 8)
    for path in params["absent"]:
        if os.path.lexists(path):
            changes[path] = None
    result = {"changed": bool(changes), "reloaded": False, "written": [p for p, c in changes.items() if c is not None],
              "removed": [p for p, c in changes.items() if c is None]}
    if module._diff:
        result["diff"] = [{"before_header": p, "after_header": p, "before": read(p) or "", "after": c or ""}
                          for p, c in changes.items()]
    if module.check_mode:
        module.exit_json(**result)

    clock = time.monotonic()
    if changes:
        problem = zdt_nginx.test_config(changes, params["main_conf"])
        if problem:
            module.fail_json(msg=f"nginx -t refused the new configuration: {problem}", **result)
    result["timings"] = {"test": round(time.monotonic() - clock, 2)}
    first = params["files"][0]["path"] if params["files"] else None
    if params["save_before"] and first in changes and read(first) is not None:
        directory(os.path.dirname(params["save_before"]), 0o700, 0, 0)
        write_atomic(params["save_before"], read(first), 0o600, 0, 0)
    for path, content in changes.items():
        if content is None:
            os.unlink(path)
        else:
            write_atomic(path, content, modes.get(path, 0o644))
    if changes or params["force_reload"]:
        result["marks"] = [os.path.getsize(path) if os.path.exists(path) else 0 for path in params["mark"]]
        result["reloaded_at"] = time.time()
        try:
            result["timings"]["reload"] = zdt_nginx.reload()
        except zdt_nginx.NginxError as error:
            module.fail_json(msg=str(error), **result)
        result.update(reloaded=True, changed=True)
    if params["check"]:
        clock = time.monotonic()
        result["checked"], error = zdt_nginx.check_release(params["check"])
        result["timings"]["check"] = round(time.monotonic() - clock, 2)
        if error:
            module.fail_json(msg=error, **result)
    record = params["record"]
    if record and read(record["path"]) != (text := json.dumps(record["content"], indent=1, sort_keys=True) + "\n"):
        # The collection's own record of how the site is checked (not the site itself): like
        # history.jsonl, writing it is not reported as a change.
        directory(os.path.dirname(record["path"]), 0o700, 0, 0)
        write_atomic(record["path"], text, 0o600, 0, 0)
    drained = params["save_drained"]
    if drained and read(drained["path"]) != (drained.get("content") or None):
        # Like the record: the collection's own state, root's, not reported as a change.
        if drained.get("content"):
            directory(os.path.dirname(drained["path"]), 0o700, 0, 0)
            write_atomic(drained["path"], drained["content"], 0o600, 0, 0)
        else:
            os.unlink(drained["path"])
    if params["drain_timeout"] > 0:
        clock = time.monotonic()
        result["drained"] = zdt_nginx.drain(params["drain_timeout"])
        result["timings"]["drain"] = round(time.monotonic() - clock, 2)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
