# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""nginx, as the collection drives it: test a candidate file inside the full configuration
before it lands, reload and wait until the old workers no longer accept connections, wait
for old workers to drain, and check a release through nginx.

Pure standard library: the host-side helper imports it too.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import re
import subprocess
import tempfile
import time

from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import read
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_http import (
    OK_STATUS,
    get_tcp,
    redirect_hint,
    static_assets,
)

MAIN_CONF = "/etc/nginx/nginx.conf"
PID_FILE = "/run/nginx.pid"
ERROR_LOG = "/var/log/nginx/error.log"
_INCLUDE = re.compile(r"^(?P<indent>[ \t]*)include[ \t]+(?P<pattern>[^;]+);", re.MULTILINE)


class NginxError(Exception):
    pass


# --- nginx -t of one file inside the full configuration ---------------------------------

def _rewrite(main_text: str, prefix: str, candidate: str, dest: str | None) -> str:
    """MAIN_TEXT with every include of DEST (or of a glob that would include it) replaced by CANDIDATE."""
    real_dest = os.path.realpath(dest) if dest else None

    def expand(match: re.Match) -> str:
        indent = match.group("indent")
        pattern = match.group("pattern").strip().strip("\"'")
        full = pattern if os.path.isabs(pattern) else os.path.join(prefix, pattern)
        if real_dest is None:
            return f"{indent}include {full};"
        files = sorted(glob.glob(full))
        kept = [f for f in files if os.path.realpath(f) != real_dest]
        if len(kept) == len(files) and not fnmatch.fnmatch(dest, full):
            return f"{indent}include {full};"
        listed = sorted(kept + [dest])
        return "\n".join(f"{indent}include {candidate if f == dest else f};" for f in listed)

    return _INCLUDE.sub(expand, main_text)


def test_config(files: dict[str, str | None], main_conf: str = MAIN_CONF, binary: str = "nginx") -> str:
    """Run `nginx -t` on the configuration as it would be with FILES (path -> new content, None
    for removed) in place, without touching the live files. Returns '' when valid, else the error."""
    prefix = os.path.dirname(main_conf)
    temporary: list[str] = []
    try:
        candidates = {}
        for path, content in files.items():
            handle, name = tempfile.mkstemp(prefix="zdt-nginx-", suffix=".candidate")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(content or "")  # a removed file is tested as an empty one
            temporary.append(name)
            candidates[path] = name
        text = read(candidates[main_conf]) if main_conf in candidates else read(main_conf)
        if text is None:
            return f"{main_conf} not found: is nginx installed?"
        for path, name in candidates.items():
            if path != main_conf:
                text = _rewrite(text, prefix, name, path)
        text = _rewrite(text, prefix, "", None)  # every other include made absolute
        handle, test_conf = tempfile.mkstemp(prefix="zdt-nginx-", suffix=".conf")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        temporary.append(test_conf)
        proc = subprocess.run([binary, "-t", "-q", "-c", test_conf], capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return ""
        error = proc.stderr or proc.stdout
        for path, name in candidates.items():
            error = error.replace(name, path)
        return error.replace(test_conf, main_conf).strip()
    finally:
        for name in temporary:
            os.unlink(name)


def with_shutdown_timeout(text: str, seconds: int) -> str:
    """The main configuration with worker_shutdown_timeout at least SECONDS (never lowered:
    several apps on one host each need theirs)."""
    pattern = re.compile(r"^[ \t]*worker_shutdown_timeout\s+(\d+)s?;[^\n]*$", re.MULTILINE)
    found = pattern.search(text)
    if found:
        if int(found.group(1)) >= seconds:
            return text
        return pattern.sub(f"worker_shutdown_timeout {seconds}s;", text, count=1)
    pid = re.search(r"^[ \t]*pid\s[^\n]*\n", text, re.MULTILINE)
    at = pid.end() if pid else 0
    return text[:at] + f"worker_shutdown_timeout {seconds}s;\n" + text[at:]


# --- the running nginx ------------------------------------------------------------------

def master_pid() -> int | None:
    """The pid of the running nginx master, None when nginx is not running."""
    text = (read(PID_FILE) or "").strip()
    if not text.isdigit():
        return None
    cmdline = read(f"/proc/{text}/cmdline")
    return int(text) if cmdline and cmdline.startswith("nginx: master") else None


def _titles() -> dict[int, str]:
    titles = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    titles[int(entry)] = handle.read().rstrip(b"\0").decode("utf-8", "replace")
            except OSError:
                continue
    return titles


def serving_workers() -> set[int]:
    """Pids of the nginx workers that accept connections (not those shutting down)."""
    return {pid for pid, title in _titles().items() if title == "nginx: worker process"}


def reload() -> float:
    """`nginx -s reload`, then wait until no worker of the old configuration accepts connections
    (until then a new connection may still reach an old worker). Returns the seconds it took."""
    if master_pid() is None:
        raise NginxError("nginx is not running: the reload cannot happen (start it: systemctl start nginx)")
    started = time.monotonic()
    before = serving_workers()
    proc = subprocess.run(["nginx", "-s", "reload"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NginxError(f"nginx -s reload failed: {proc.stderr.strip()}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = serving_workers()
        if now and not now & before:
            return round(time.monotonic() - started, 2)
        time.sleep(0.01)
    raise NginxError("nginx did not replace its workers within 10 s of the reload (see /var/log/nginx/error.log)")


def drain(seconds: float) -> bool:
    """Wait until no nginx worker of an older configuration is left; True when none is."""
    deadline = time.monotonic() + seconds
    while True:
        if not any(t == "nginx: worker process is shutting down" for t in _titles().values()):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


# --- a release, checked through nginx -----------------------------------------------------

def check_release(spec: dict) -> tuple[list[dict], str]:
    """Ask nginx until the release answers its health path, then each page once, then the
    static assets those pages reference: (answers, error or '').

    SPEC: address (or addresses: each is asked, e.g. 127.0.0.1 and ::1 for a site on both
    families), port, tls, host, release, header, health_path, paths, timeout, delay,
    extra_headers, proto, static_url, assets (bool).
    """
    checked: list[dict] = []
    for address in spec.get("addresses") or [spec.get("address", "127.0.0.1")]:
        answers, error = _check_over(dict(spec, address=address))
        checked += answers
        if error:
            return checked, error
    return checked, ""


def _check_over(spec: dict) -> tuple[list[dict], str]:
    """check_release over SPEC's one address."""
    address, port, tls = spec.get("address", "127.0.0.1"), int(spec["port"]), bool(spec.get("tls"))
    release, header = str(spec["release"]), spec.get("header", "X-Release")
    host = spec.get("host", "localhost")
    headers = dict(spec.get("extra_headers") or {})
    timeout, delay = float(spec.get("timeout", 10)), float(spec.get("delay", 0.5))
    base = f"{'https' if tls else 'http'}://{'[' + address + ']' if ':' in address else address}:{port}"
    checked: list[dict] = []

    def ask(path: str) -> tuple[int, str, object]:
        answer = get_tcp(address, port, path, host, tls=tls, headers=headers)
        named = answer.header(header) if answer.status else ""
        checked.append({"url": base + path, "status": answer.status, "release": named})
        return answer.status, named, answer

    # Right after a reload the old workers may still answer for a few milliseconds: ask
    # again soon, then every DELAY, for TIMEOUT seconds.
    health = spec.get("health_path", "/health")
    deadline, pause = time.monotonic() + timeout, 0.02
    while True:
        status, named, answer = ask(health)
        if (status == 200 and named == release) or time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, delay)
    if status != 200 or named != release:
        del checked[:-1]
        return checked, (f"{base}{health} answered {answer.describe()} from release {named or '(none)'}, "
                         f"expected 200 from {release}.{redirect_hint(answer)}")
    failures = []
    assets: list[str] = []
    for path in spec.get("paths") or []:
        status, named, answer = ask(path)
        if status not in OK_STATUS or named != release:
            failures.append(f"{base}{path} answered {answer.describe()} from release {named or '(none)'}"
                            + redirect_hint(answer))
        elif spec.get("assets") and status == 200:
            assets += [a for a in static_assets(answer.body, path, spec.get("static_url", "/static/"), host)
                       if a not in assets]
    for path in assets:
        status, _named, answer = ask(path)
        if not 200 <= status < 300:
            failures.append(f"static asset {base}{path} answered {answer.describe()}")
    if failures:
        return checked, "; ".join(failures) + f" (expected 2xx or 3xx from {release})"
    return checked, ""


def health_ok(spec: dict) -> tuple[bool, str, bool]:
    """One health request through nginx: (answered 200 from the release, what it answered,
    whether nginx refused the connection: nothing listens, nginx is stopped or restarting)."""
    answer = get_tcp(spec.get("address", "127.0.0.1"), int(spec["port"]), spec.get("health_path", "/health"),
                     spec.get("host", "localhost"), tls=bool(spec.get("tls")), timeout=5)
    named = answer.header(spec.get("header", "X-Release"))
    ok = answer.status == 200 and named == str(spec["release"])
    return ok, f"{answer.describe()} from release {named or '(none)'}", answer.refused
