# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The load balancer (role nginx_lb): its site as stored on the LB host, the two nginx
files rendered from it, and what is read back there.

- The state (``Lb.state``, JSON) is what the role's ``main`` configured plus the drained
  members. drain, restore and report are delegated to the LB by other hosts, with none of
  the LB's variables: they read everything from this state, so the files are always
  rendered from it, here, never from a template in the caller's context.
- ``established``: the LB's established TCP connections to a member's address:port, from
  /proc/net/tcp and /proc/net/tcp6 (an IPv4-mapped IPv6 address counts as IPv4).
- ``tally``: per-member counts from the site's access log (format ``LOG_FORMAT``), each
  attempt at an upstream attributed to the member at that address.

Pure standard library.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import sys

from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import Lb

NEXT_UPSTREAM = ("error", "timeout", "invalid_header", "http_500", "http_502", "http_503", "http_504",
                 "http_403", "http_404", "http_429", "non_idempotent", "off")
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
_SERVER_NAME = re.compile(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.)*[A-Za-z0-9-]{1,63}")
_MEMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}")
_PATH = re.compile(r"/[A-Za-z0-9._~/%?=&+-]*")

# Fixed fields first; the upstream variables quoted (they hold ", " between the upstreams
# one request tried and " : " across internal redirects). $msec is the time of the log
# write (the request's end), with milliseconds: report counts entries at `since` or later.
LOG_FORMAT = ('$msec $status $request_time "$upstream_addr" "$upstream_status" "$upstream_header_time" '
              '$remote_addr "$host" "$request" $body_bytes_sent "$http_user_agent"')
_LOG_LINE = re.compile(r'(?P<msec>\d+\.\d+) (?P<status>\d{3}) (?P<request_time>\S+) "(?P<addr>[^"]*)" '
                       r'"(?P<ustatus>[^"]*)" "(?P<uheader>[^"]*)" ')
_SPLIT = re.compile(r", | : ")


# --- the site's settings ---------------------------------------------------------------

def valid_address(address: object) -> bool:
    """A host name or an IP address (IPv6 without brackets)."""
    if not isinstance(address, str) or not address:
        return False
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        return bool(_HOSTNAME.fullmatch(address)) and len(address) <= 253


def backends(entries: list[dict]) -> list[dict]:
    """Each backend with its defaults filled in: address = host, port 80, weight 1."""
    def given(entry: dict, key: str, default: int) -> int:
        return default if entry.get(key) is None else int(entry[key])

    return [{"host": entry["host"], "address": entry.get("address") or entry["host"],
             "port": given(entry, "port", 80), "weight": given(entry, "weight", 1)} for entry in entries]


def problems(site: dict) -> list[str]:
    """What is wrong with SITE (the stored settings), each naming the module option."""
    found = []
    members = site["backends"]
    if not members:
        found.append("backends: at least one backend is needed")
    hosts = [b["host"] for b in members]
    for backend in members:
        if not isinstance(backend["host"], str) or not _MEMBER.fullmatch(backend["host"]):
            found.append(f"backends: host {backend['host']!r} is not a member name ([A-Za-z0-9][A-Za-z0-9._@:-]*)")
        if not valid_address(backend["address"]):
            found.append(f"backends: address {backend['address']!r} of {backend['host']} is neither a host name "
                         "nor an IP address")
        if not 0 < backend["port"] < 65536:
            found.append(f"backends: port {backend['port']} of {backend['host']} is not a TCP port")
        if backend["weight"] < 1:
            found.append(f"backends: weight {backend['weight']} of {backend['host']} is below 1")
    if len(set(hosts)) != len(hosts):
        found.append(f"backends: a host is listed twice ({', '.join(sorted({h for h in hosts if hosts.count(h) > 1}))})")
    peers = [(b["address"], b["port"]) for b in members]
    if len(set(peers)) != len(peers):
        found.append("backends: two backends share an address and port (their requests could not be told apart)")
    if not 0 < site["listen"] < 65536:
        found.append(f"listen: {site['listen']} is not a TCP port")
    if not site["server_names"] or any(not _SERVER_NAME.fullmatch(str(n)) for n in site["server_names"]):
        found.append(f"server_names: {site['server_names']!r} must be host names (a leading '*.' allowed)")
    for option in ("max_fails", "keepalive"):
        if site[option] < 0:
            found.append(f"{option}: {site[option]} is below 0")
    for option in ("fail_timeout", "request_timeout"):
        if site[option] < 1:
            found.append(f"{option}: {site[option]} is below 1 second")
    tokens = site["next_upstream"].split()
    if not tokens or any(t not in NEXT_UPSTREAM for t in tokens) or ("off" in tokens and len(tokens) > 1):
        found.append(f"next_upstream: {site['next_upstream']!r} must be nginx proxy_next_upstream conditions "
                     f"({', '.join(NEXT_UPSTREAM)}), or off alone")
    if not _PATH.fullmatch(site["health_path"]):
        found.append(f"health_path: {site['health_path']!r} must be a path starting with /")
    if not (valid_address(site["health_host"].rsplit(":", 1)[0]) if site["health_host"] else False):
        found.append(f"health_host: {site['health_host']!r} must be a host name")
    unknown = [m for m in site.get("down", []) if m not in hosts]
    if unknown:
        found.append(f"down: {', '.join(unknown)} not among the backends")
    return found


def dump(state: dict) -> str:
    return json.dumps(state, indent=1, sort_keys=True) + "\n"


def load(text: str | None) -> dict | None:
    """The stored state, None when there is none (or it is not a state)."""
    try:
        state = json.loads(text) if text else None
    except ValueError:
        return None
    return state if isinstance(state, dict) and isinstance(state.get("backends"), list) else None


def unknown_members(state: dict, members: list[str]) -> list[str]:
    hosts = {b["host"] for b in state["backends"]}
    return [m for m in members if m not in hosts]


def in_order(state: dict, members: set[str]) -> list[str]:
    """MEMBERS in the order of the backends."""
    return [b["host"] for b in state["backends"] if b["host"] in members]


# --- the nginx files ------------------------------------------------------------------------

def peer(address: str, port: int) -> str:
    """ADDRESS:PORT as nginx writes it (an IPv6 address in brackets)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def render_upstream(lb: Lb, state: dict) -> str:
    down = set(state.get("down", []))
    lines = [
        f"# Managed by zerodowntime.web (role nginx_lb, module zdt_lb): the members of load balancer {lb.name}.",
        f"# Rendered from {lb.state}; drain and restore rewrite it (a member marked down gets",
        "# no new request). Edits here are overwritten.",
        f"upstream {lb.upstream} {{",
        "    # The members' failure counts (max_fails) shared by every worker.",
        f"    zone {lb.upstream} 64k;",
    ]
    for backend in state["backends"]:
        options = f"weight={backend['weight']} max_fails={state['max_fails']} fail_timeout={state['fail_timeout']}s"
        drained = " down" if backend["host"] in down else ""
        lines.append(f"    server {peer(backend['address'], backend['port'])} {options}{drained};"
                     f"  # {backend['host']}{' (drained)' if drained else ''}")
    if state["keepalive"] > 0:
        lines += ["    # Idle connections to the members kept open by each worker (HTTP/1.1, no Connection: close).",
                  f"    keepalive {state['keepalive']};"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_server(lb: Lb, state: dict) -> str:
    listen = state["listen"]
    keepalive = state["keepalive"] > 0
    lines = [
        f"# Managed by zerodowntime.web (role nginx_lb, module zdt_lb): load balancer {lb.name}.",
        f"# Rendered from {lb.state}; the members are in {os.path.basename(lb.upstream_conf)}.",
        "# Edits here are overwritten.",
        "",
        "# What report reads: the time of each entry ($msec), the upstreams each request tried",
        "# and what each answered.",
        f"log_format {lb.log_format} '{LOG_FORMAT}';",
        "",
        "server {",
        f"    listen {listen};",
        f"    listen [::]:{listen};",
        f"    server_name {' '.join(state['server_names'])};",
        f"    access_log {lb.access_log} {lb.log_format};",
        "",
        "    proxy_set_header Host $host;",
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
    ]
    if keepalive:
        lines += ["    # Keep-alive to the members: HTTP/1.1 and no \"Connection: close\" passed on.",
                  "    proxy_http_version 1.1;",
                  '    proxy_set_header Connection "";']
    lines += [
        "    proxy_redirect off;",
        f"    proxy_read_timeout {state['request_timeout']}s;",
        f"    proxy_send_timeout {state['request_timeout']}s;",
        "    # Another member is tried on these conditions, for idempotent requests only",
        "    # (nginx never resends a POST, LOCK or PATCH unless non_idempotent is listed).",
        f"    proxy_next_upstream {state['next_upstream']};",
        "",
        "    location / {",
        f"        proxy_pass http://{lb.upstream};",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


# --- connections from the LB to a member -------------------------------------------------

ESTABLISHED = "01"


def resolve(address: str, port: int) -> set[str]:
    """The IP addresses ADDRESS stands for on this host (as nginx resolved it when it loaded its
    configuration, unless the name's addresses changed since)."""
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except OSError:
        return set()
    return {normal_ip(info[4][0]) for info in infos}


def normal_ip(text: str) -> str:
    ip = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip)


def _hex_ip(text: str) -> str:
    """An address of /proc/net/tcp{,6}: 32-bit words in the host's byte order."""
    raw = bytes.fromhex(text)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return normal_ip(socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw))


def parse_proc_net_tcp(text: str) -> list[tuple[str, int, str, int, str]]:
    """(local ip, local port, remote ip, remote port, state) of each socket in TEXT."""
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or ":" not in fields[1] or ":" not in fields[2]:
            continue
        (local, lport), (remote, rport) = fields[1].split(":"), fields[2].split(":")
        sockets.append((_hex_ip(local), int(lport, 16), _hex_ip(remote), int(rport, 16), fields[3]))
    return sockets


def established(targets: dict[str, tuple[set[str], int]],
                tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> dict[str, int]:
    """For each member (name -> (its IP addresses, port)), the established TCP connections
    this host has to it."""
    counts = dict.fromkeys(targets, 0)
    for table in tables:
        try:
            with open(table, encoding="ascii") as handle:
                text = handle.read()
        except OSError:
            continue
        for _lip, _lport, rip, rport, st in parse_proc_net_tcp(text):
            if st != ESTABLISHED:
                continue
            for name, (ips, port) in targets.items():
                if rport == port and rip in ips:
                    counts[name] += 1
    return counts


# --- the access log ------------------------------------------------------------------------

def parse_line(line: str) -> dict | None:
    """An entry of LOG_FORMAT: msec, status and the attempts (addr, status, header_time), or None."""
    found = _LOG_LINE.match(line)
    if not found:
        return None
    addrs = [a for a in _SPLIT.split(found.group("addr")) if a not in ("", "-")]
    statuses = _SPLIT.split(found.group("ustatus"))
    headers = _SPLIT.split(found.group("uheader"))
    attempts = []
    for i, addr in enumerate(addrs):
        status = statuses[i] if i < len(statuses) else "-"
        header = headers[i] if i < len(headers) else "-"
        attempts.append({"addr": addr, "status": int(status) if status.isdigit() else None,
                         "answered": header not in ("", "-")})
    return {"msec": float(found.group("msec")), "status": int(found.group("status")), "attempts": attempts,
            "retried": ", " in found.group("addr")}


def _lb_made(attempt: dict) -> bool:
    """The LB got no answer from this upstream (refused, reset, timed out): the 502/504 is its own."""
    return not attempt["answered"] and attempt["status"] in (None, 502, 504)


def _zero() -> dict:
    return {"requests": 0, "status_5xx": 0, "lb_errors": 0, "retried": 0}


def tally(lines: list[str], since: float, by_addr: dict[str, str], members: list[str]) -> dict:
    """Counts of the entries at SINCE or later. BY_ADDR: upstream address (as nginx logs it) ->
    member. Per member in MEMBERS, each attempt at it: requests, status_5xx (it answered 5xx),
    lb_errors (it gave no answer: the LB's own 502/504), retried (the request tried another
    upstream too). Totals, each request once: requests, status_5xx (what the client got),
    lb_errors (the LB answered 502/504 itself), retried (more than one upstream tried)."""
    per = {m: _zero() for m in members}
    totals = _zero()
    first = last = None
    for line in lines:
        entry = parse_line(line)
        if entry is None or entry["msec"] < since:
            continue
        first = entry["msec"] if first is None else min(first, entry["msec"])
        last = entry["msec"] if last is None else max(last, entry["msec"])
        totals["requests"] += 1
        totals["status_5xx"] += entry["status"] >= 500
        totals["retried"] += entry["retried"]
        attempts = entry["attempts"]
        if entry["status"] in (502, 504) and (not attempts or _lb_made(attempts[-1])):
            totals["lb_errors"] += 1
        tried = set()
        for attempt in attempts:
            member = by_addr.get(attempt["addr"])
            if member not in per:
                continue
            tried.add(member)
            counts = per[member]
            counts["requests"] += 1
            if attempt["answered"] and (attempt["status"] or 0) >= 500:
                counts["status_5xx"] += 1
            if _lb_made(attempt):
                counts["lb_errors"] += 1
        for member in tried:
            per[member]["retried"] += entry["retried"]
    return {"since": since, "first": first, "last": last, "members": per, "totals": totals}


def _msec(line: bytes) -> float | None:
    head = line.split(b" ", 1)[0]
    try:
        return float(head)
    except ValueError:
        return None


def _tail_since(path: str, since: float, slack: float, block: int = 65536) -> tuple[list[bytes], bool]:
    """The lines of PATH after the last one older than SINCE - SLACK (read from the end back),
    and whether the file's start was reached without finding one."""
    try:
        handle = open(path, "rb")
    except OSError:
        return [], True
    with handle:
        handle.seek(0, os.SEEK_END)
        at = handle.tell()
        data = b""
        while at > 0:
            step = min(block, at)
            at -= step
            handle.seek(at)
            data = handle.read(step) + data
            lines = data.split(b"\n")
            complete = lines[1:] if at > 0 else lines  # the first piece may be a partial line
            older = next((i for i in range(len(complete) - 1, -1, -1)
                          if (m := _msec(complete[i])) is not None and m < since - slack), None)
            if older is not None:
                return [line for line in complete[older + 1:] if line], False
        return [line for line in data.split(b"\n") if line], True


def lines_since(path: str, since: float, slack: float = 10.0) -> list[str]:
    """The access log's lines from SINCE - SLACK on (entries of several workers interleave a
    little), with the rotated PATH.1 too when PATH begins after SINCE."""
    lines, reached_start = _tail_since(path, since, slack)
    if reached_start:
        older, _start = _tail_since(f"{path}.1", since, slack)
        lines = older + lines
    return [line.decode("utf-8", "replace") for line in lines]
