#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""A load balancer site on its nginx host: configure it, drain or restore members, report."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_lb
short_description: An nginx load balancer site in front of app hosts; drain, restore and count its members
author: zerodowntime.web contributors (@zerodowntime)
description:
  - Each state is one step of the role C(zerodowntime.web.nginx_lb), done in one run on the load balancer host.
  - O(state=present) stores the site (O(backends) and the other options) in C(/var/lib/zerodowntime/lb.d/NAME.json)
    and renders from it an C(upstream) file and a C(server) file in C(/etc/nginx/conf.d). Members drained earlier
    stay drained. Every change is tested with C(nginx -t) inside the full configuration before it lands, then
    nginx is reloaded (never restarted), waiting until no worker of the old configuration accepts connections.
  - O(state=drained) marks O(members) C(down) (tested, reloaded), waits until the workers of the previous
    configuration have exited (their requests finished), then verifies that this host has no established TCP
    connection to any drained member's address and port (from C(/proc/net/tcp) and C(/proc/net/tcp6)), all
    within O(drain_timeout) seconds, else fails naming the member and the count. It refuses, changing nothing,
    when no member would stay active.
  - O(state=restored) asks each of O(members) for the site's health path directly (with the site's health Host),
    refuses, changing nothing, unless every one answers 2xx, then removes C(down) (tested, reloaded).
  - O(state=report) counts the access log's entries logged at O(since) or later, per member and in total.
  - drained, restored and report need only O(name) and O(members); they read the rest from the stored site, as
    other hosts delegate them to the load balancer. Every change holds a flock of the site's lock file, so two
    hosts draining at once are serialized (the second sees the first's drained member).
version_added: 0.1.0
options:
  name:
    description: The load balancer site (names its state, files, upstream and log); 1-32 characters from C([a-z0-9_-]).
    type: str
    required: true
  state:
    description: What to do.
    type: str
    choices: [present, drained, restored, report]
    default: present
  backends:
    description: With O(state=present), the members, in order.
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: The member's name (usually its inventory_hostname), as O(members) names it.
        type: str
        required: true
      address:
        description: Host name or IP address the load balancer reaches it at (default O(backends[].host)).
        type: str
      port:
        description: Its HTTP port.
        type: int
        default: 80
      weight:
        description: Its nginx weight.
        type: int
        default: 1
  members:
    description: >-
      Member names (O(backends[].host)) to drain or restore; for O(state=report) those to count
      (empty counts every member).
    type: list
    elements: str
    default: []
  listen:
    description: Port the site listens on (IPv4 and IPv6).
    type: int
    default: 80
  server_names:
    description: The site's server names.
    type: list
    elements: str
    default: [localhost]
  max_fails:
    description: Failed attempts within O(fail_timeout) after which a member is left out for O(fail_timeout) (0 never).
    type: int
    default: 3
  fail_timeout:
    description: Seconds of the window of O(max_fails), and of the time a failing member is left out.
    type: int
    default: 10
  keepalive:
    description: Idle connections to the members each worker keeps open (0 for none).
    type: int
    default: 16
  next_upstream:
    description: >-
      C(proxy_next_upstream): on which failures a request is passed to another member. nginx passes only
      idempotent requests on (not POST, LOCK, PATCH) unless C(non_idempotent) is listed.
    type: str
    default: error timeout
  request_timeout:
    description: Seconds the load balancer waits for a member's answer (C(proxy_read_timeout), C(proxy_send_timeout)).
    type: int
    default: 60
  health_path:
    description: Path restore asks each member for.
    type: str
    default: /health
  health_host:
    description: Host header of that request (default the first of O(server_names)).
    type: str
    default: ""
  remove_default_site:
    description: Remove the distribution's default site (it owns port 80 on IPv4 and IPv6) in the same reload.
    type: bool
    default: true
  drain_timeout:
    description: With O(state=drained), seconds for the old workers to exit and the connections to the drained members to close.
    type: float
    default: 70
  since:
    description: With O(state=report), count the entries logged at this time or later (epoch seconds).
    type: float
    default: 0
  lock_wait:
    description: Seconds to wait for another change of the same site (another host draining) to finish.
    type: float
    default: 120
  main_conf:
    description: Main nginx configuration (for C(nginx -t)).
    type: path
    default: /etc/nginx/nginx.conf
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: >-
      In check mode nothing is written nor reloaded; the candidate configuration is still tested with nginx -t
      (when nginx is installed), restore still asks the members' health, and the refusals still apply.
  diff_mode:
    support: full
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Balance shop over two app hosts
  zerodowntime.web.zdt_lb:
    name: shop
    backends:
      - {host: web1, address: 10.0.0.11}
      - {host: web2, address: 10.0.0.12}
    server_names: [shop.example.com]

- name: Take web1 out, once its requests have finished
  zerodowntime.web.zdt_lb:
    name: shop
    state: drained
    members: [web1]
  delegate_to: lb1

- name: Count what web1 answered since the canary began
  zerodowntime.web.zdt_lb:
    name: shop
    state: report
    members: [web1]
    since: 1795000000.25
  delegate_to: lb1
"""

RETURN = r"""
down:
  description: The drained members, in the order of the backends.
  type: list
  elements: str
  returned: when state is not report
  sample: [web1]
active:
  description: The members that take requests.
  type: list
  elements: str
  returned: when state is not report
  sample: [web2]
reloaded:
  description: Whether nginx was reloaded.
  type: bool
  returned: when state is not report
connections:
  description: Established connections from this host to each drained member when the verification ended.
  type: dict
  returned: when state is drained, not in check mode
  sample: {web1: 0}
health:
  description: What each member answered to its health request (C(member), C(url), C(status), C(answer)).
  type: list
  elements: dict
  returned: when state is restored
report:
  description: >-
    C(since), C(first) and C(last) (times of the first and last entry counted), C(members) (per member, each
    attempt at it: C(requests), C(status_5xx) it answered, C(lb_errors) it gave no answer to so the load
    balancer made the 502/504, C(retried) requests that also tried another upstream) and C(totals) (each request
    once: C(requests), C(status_5xx) the clients got, C(lb_errors) answered 502/504 by the load balancer itself,
    C(retried)).
  type: dict
  returned: when state is report
  sample:
    since: 1795000000.25
    first: 1795000000.31
    last: 1795000030.2
    members: {web1: {requests: 1502, status_5xx: 0, lb_errors: 0, retried: 0}}
    totals: {requests: 3001, status_5xx: 0, lb_errors: 0, retried: 0}
timings:
  description: Seconds of each part (C(lock), C(test), C(reload), C(workers), C(connections), C(health), C(read), C(total)).
  type: dict
  returned: always
"""

import fcntl
import os
import time
from contextlib import contextmanager

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_lb, zdt_nginx
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import directory, read, write_atomic
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_http import get_tcp, wait_until
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import (
    NGINX_DEFAULT_SITE,
    Lb,
    LayoutError,
)

SITE_OPTIONS = ("listen", "server_names", "max_fails", "fail_timeout", "keepalive", "next_upstream",
                "request_timeout", "health_path", "health_host")


class Refused(Exception):
    """A step that must not happen; nothing was changed."""


class Change:
    """One change of a site under its lock: the state as it is, then as it should be."""

    def __init__(self, module: AnsibleModule, lb: Lb) -> None:
        self.module, self.lb = module, lb
        self.result: dict = {"changed": False, "reloaded": False, "timings": {}}
        self.started = time.monotonic()

    def timing(self, name: str, since: float) -> float:
        self.result["timings"][name] = round(time.monotonic() - since, 2)
        return time.monotonic()

    @contextmanager
    def locked(self):  # noqa: ANN201 - a context manager
        """A flock of the site's lock file (waiting up to lock_wait); none in check mode, which writes nothing."""
        clock = time.monotonic()
        if self.module.check_mode and not os.path.isdir(self.lb.state_dir):
            yield
            return
        directory(self.lb.state_dir, 0o700, 0, 0)
        descriptor = os.open(self.lb.lock, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            deadline = time.monotonic() + self.module.params["lock_wait"]
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise Refused(f"another change of load balancer {self.lb.name} held {self.lb.lock} for "
                                      f"{self.module.params['lock_wait']:g} s") from None
                    time.sleep(0.1)
            self.timing("lock", clock)
            yield
        finally:
            os.close(descriptor)  # releases the flock

    def stored(self) -> dict:
        state = zdt_lb.load(read(self.lb.state))
        if state is None:
            raise Refused(f"load balancer {self.lb.name} is not configured on this host ({self.lb.state} is missing): "
                          "run the role nginx_lb's main entry point on it first. Nothing was changed.")
        return state

    def known(self, state: dict, members: list[str]) -> None:
        unknown = zdt_lb.unknown_members(state, members)
        if unknown:
            raise Refused(f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a member of load balancer "
                          f"{self.lb.name} (members: {', '.join(b['host'] for b in state['backends'])}). "
                          "Nothing was changed.")

    def apply(self, before: dict | None, state: dict, extra: dict[str, str | None] | None = None) -> None:
        """Make the host match STATE: nginx -t of the files that differ (and EXTRA: path -> content,
        None to remove), write them, reload, then store STATE. The state is written last, so a reload
        that failed is retried by the next run (its state still differs)."""
        lb = self.lb
        wanted = {lb.upstream_conf: zdt_lb.render_upstream(lb, state), lb.server_conf: zdt_lb.render_server(lb, state)}
        changes = {path: text for path, text in wanted.items() if read(path) != text}
        changes.update({path: text for path, text in (extra or {}).items()
                        if (text is None and os.path.lexists(path)) or (text is not None and read(path) != text)})
        state_text = zdt_lb.dump(state)
        state_changed = read(lb.state) != state_text
        down = set(state.get("down", []))
        self.result.update(changed=bool(changes) or state_changed, down=zdt_lb.in_order(state, down),
                           active=[b["host"] for b in state["backends"] if b["host"] not in down],
                           written=sorted(p for p, t in changes.items() if t is not None),
                           removed=sorted(p for p, t in changes.items() if t is None))
        if self.module._diff:
            self.result["diff"] = [{"before_header": p, "after_header": p, "before": read(p) or "", "after": t or ""}
                                   for p, t in changes.items()]
            if state_changed:
                self.result["diff"].append({"before_header": lb.state, "after_header": lb.state,
                                            "before": zdt_lb.dump(before) if before else "", "after": state_text})
        clock = time.monotonic()
        if changes and (not self.module.check_mode or os.path.exists(self.module.params["main_conf"])):
            problem = zdt_nginx.test_config(changes, self.module.params["main_conf"])
            if problem:
                raise Refused(f"nginx -t refused the load balancer's configuration: {problem}. Nothing was changed.")
        self.timing("test", clock)
        if self.module.check_mode or not self.result["changed"]:
            return
        for path, text in changes.items():
            if text is None:
                os.unlink(path)
            else:
                write_atomic(path, text, 0o644)
        try:
            self.result["timings"]["reload"] = zdt_nginx.reload()
        except zdt_nginx.NginxError as error:
            raise Refused(f"{error} (the files are written; the next run reloads again)") from None
        self.result["reloaded"] = True
        directory(lb.state_dir, 0o700, 0, 0)
        write_atomic(lb.state, state_text, 0o600, 0, 0)


def present(change: Change, params: dict) -> None:
    site = {option: params[option] for option in SITE_OPTIONS}
    site["health_host"] = site["health_host"] or (site["server_names"] or [""])[0]
    site["backends"] = zdt_lb.backends(params["backends"])
    site["name"] = change.lb.name
    problems = zdt_lb.problems(site)
    if problems:
        raise Refused("; ".join(problems) + ". Nothing was changed.")
    with change.locked():
        before = zdt_lb.load(read(change.lb.state))
        hosts = {b["host"] for b in site["backends"]}
        # Members drained earlier stay drained (those still among the backends).
        site["down"] = zdt_lb.in_order(site, set(before.get("down", []) if before else []) & hosts)
        if len(site["down"]) == len(hosts):
            raise Refused(f"every member of load balancer {change.lb.name} is drained ({', '.join(site['down'])}): "
                          "restore one first (entry point restore). Nothing was changed.")
        extra = {NGINX_DEFAULT_SITE: None} if params["remove_default_site"] else {}
        change.apply(before, site, extra)


def drained(change: Change, params: dict) -> None:
    members, lb = params["members"], change.lb
    if not members:
        raise Refused("members: name at least one member to drain. Nothing was changed.")
    with change.locked():
        before = change.stored()
        change.known(before, members)
        down = set(before.get("down", [])) | set(members)
        active = [b["host"] for b in before["backends"] if b["host"] not in down]
        if not active:
            already = zdt_lb.in_order(before, set(before.get("down", [])))
            raise Refused(f"draining {', '.join(members)} would leave load balancer {lb.name} no active member"
                          + (f" ({', '.join(already)} already drained)" if already else "") + ". Nothing was changed.")
        change.apply(before, {**before, "down": zdt_lb.in_order(before, down)})
    if change.module.check_mode:
        return
    # The old workers finish their requests (to the drained members too) and exit; then no
    # connection to a drained member may be left (an idle keep-alive one closes with its worker).
    # The time another host's change held the lock does not count.
    deadline = time.monotonic() + params["drain_timeout"]
    clock = time.monotonic()
    workers_gone = zdt_nginx.drain(max(0.0, deadline - time.monotonic()))
    clock = change.timing("workers", clock)
    targets = {b["host"]: (zdt_lb.resolve(b["address"], b["port"]), b["port"])
               for b in before["backends"] if b["host"] in members}
    unresolved = [name for name, (ips, _port) in targets.items() if not ips]
    if unresolved:
        raise Refused(f"{', '.join(unresolved)}: address not resolvable on the load balancer, its connections cannot "
                      "be counted (nginx resolved it when it loaded its configuration)")
    counts: dict = {}

    def none_left() -> bool:
        counts.update(zdt_lb.established(targets))
        return not any(counts.values())

    wait_until(deadline, 0.2, none_left)
    change.timing("connections", clock)
    change.result["connections"] = counts
    left = {name: count for name, count in counts.items() if count}
    if left:
        raise Refused(", ".join(f"{name} still has {count} established connection{'s' * (count > 1)} from load "
                                f"balancer {lb.name}" for name, count in left.items())
                      + f" {params['drain_timeout']:g} s after it was marked down"
                      + ("" if workers_gone else " (workers of the previous configuration are still shutting down)")
                      + ": not drained")


def restored(change: Change, params: dict) -> None:
    members, lb = params["members"], change.lb
    if not members:
        raise Refused("members: name at least one member to restore. Nothing was changed.")
    with change.locked():
        before = change.stored()
        change.known(before, members)
        clock = time.monotonic()
        answers, refused = [], []
        for backend in (b for b in before["backends"] if b["host"] in members):
            address, port = backend["address"], backend["port"]
            answer = get_tcp(address, port, before["health_path"], before["health_host"], timeout=5)
            url = f"http://{zdt_lb.peer(address, port)}{before['health_path']}"
            answers.append({"member": backend["host"], "url": url, "status": answer.status,
                            "answer": answer.describe()})
            if not 200 <= answer.status < 300:
                said = f"answered {answer.describe()}" if answer.status else f"gave {answer.describe()}"
                refused.append(f"{backend['host']} {said} at {url} (Host {before['health_host']})")
        change.result["health"] = answers
        change.timing("health", clock)
        if refused:
            raise Refused(f"refusing to restore on load balancer {lb.name}: {'; '.join(refused)}. "
                          "Nothing was changed.")
        change.apply(before, {**before, "down": zdt_lb.in_order(before, set(before.get("down", [])) - set(members))})


def report(change: Change, params: dict) -> None:
    clock = time.monotonic()
    state = change.stored()
    members = params["members"] or [b["host"] for b in state["backends"]]
    change.known(state, members)
    by_addr = {}
    for backend in state["backends"]:
        for ip in zdt_lb.resolve(backend["address"], backend["port"]):
            by_addr[zdt_lb.peer(ip, backend["port"])] = backend["host"]
    lines = zdt_lb.lines_since(change.lb.access_log, params["since"])
    change.result["report"] = zdt_lb.tally(lines, params["since"], by_addr, members)
    change.timing("read", clock)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "drained", "restored", "report"], "default": "present"},
            "backends": {"type": "list", "elements": "dict", "default": [], "options": {
                "host": {"type": "str", "required": True},
                "address": {"type": "str"},
                "port": {"type": "int", "default": 80},
                "weight": {"type": "int", "default": 1},
            }},
            "members": {"type": "list", "elements": "str", "default": []},
            "listen": {"type": "int", "default": 80},
            "server_names": {"type": "list", "elements": "str", "default": ["localhost"]},
            "max_fails": {"type": "int", "default": 3},
            "fail_timeout": {"type": "int", "default": 10},
            "keepalive": {"type": "int", "default": 16},
            "next_upstream": {"type": "str", "default": "error timeout"},
            "request_timeout": {"type": "int", "default": 60},
            "health_path": {"type": "str", "default": "/health"},
            "health_host": {"type": "str", "default": ""},
            "remove_default_site": {"type": "bool", "default": True},
            "drain_timeout": {"type": "float", "default": 70},
            "since": {"type": "float", "default": 0},
            "lock_wait": {"type": "float", "default": 120},
            "main_conf": {"type": "path", "default": "/etc/nginx/nginx.conf"},
        },
        required_if=[("state", "present", ["backends"]), ("state", "drained", ["members"]),
                     ("state", "restored", ["members"])],
        supports_check_mode=True,
    )
    params = module.params
    try:
        lb = Lb(params["name"])
    except LayoutError as error:
        module.fail_json(msg=f"name: {error}")
    change = Change(module, lb)
    step = {"present": present, "drained": drained, "restored": restored, "report": report}[params["state"]]
    try:
        step(change, params)
    except Refused as refused:
        change.timing("total", change.started)
        module.fail_json(msg=str(refused), **change.result)
    change.timing("total", change.started)
    module.exit_json(**change.result)


if __name__ == "__main__":
    main()
