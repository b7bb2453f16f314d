# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Jobs that run on the host: going back to the release that served before a switch (the
deploy's rescue and the standby helper both call it), checking a serving release (the
deploy's watch and the standby helper), and the standby window itself.

The standby window is a systemd service per app, ``zdt-standby-<app>.service``, enabled
so that it comes back after a reboot. It runs this file's ``main`` (installed on the host
by the handover module, see ``install_helper``) with the window's state in
``/var/lib/zerodowntime/<app>/standby.json``: until the window ends it watches the serving
release and, if it dies, goes back to the standby release (the same steps as a deploy's
rescue, under the same lock, recorded in history.jsonl); when the window ends it stops
the standby's programs. The same launcher's ``rollback`` command is a rollback asked for
inside the window (``zdt_rollback``'s job, for its action plugin: no module run), and
``prune`` removes old releases (``zdt_prune``, and the deploy's unlock through
``zdt_lock``). Pure standard library.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import pkgutil
import re
import signal
import subprocess
import time
from datetime import datetime, timezone

from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_nginx
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_django import (
    DjangoError,
    ask_unknown_migrations,
    serve_unknown_migrations,
    unknown_migrations,
)
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import (
    directory,
    discard,
    link_atomic,
    read,
    write_atomic,
)
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import HELPER_DIR, WEB, App, LayoutError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_lock import Lock, LockHeld
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_supervisor import (
    Supervisor,
    SupervisorError,
    is_active,
    remove_programs,
    set_active,
    settling,
    worst_state,
)

HELPER_MODULES = ("zdt_files", "zdt_layout", "zdt_lock", "zdt_supervisor", "zdt_http", "zdt_nginx", "zdt_django",
                  "zdt_host")
PACKAGE = "ansible_collections.zerodowntime.web.plugins.module_utils"
LAUNCHER = f"{HELPER_DIR}/zdt_standby.py"


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(app: App, entry: dict) -> None:
    """Append one line to the app's history.jsonl (an audit log: never reported as a change)."""
    descriptor = os.open(app.history, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


def prune(app: App, keep: int, protect: list[str] | tuple[str, ...] = (), check_mode: bool = False) -> list[str]:
    """Keep the KEEP newest complete releases; remove the others and every incomplete one, never
    current, previous, one with a program on the host or one in PROTECT. The removed ones leave
    releases/ at once (renamed into the trash) and are deleted in the background. Returns their ids
    (in check mode the ones it would remove)."""
    protected = set(app.serving()) | set(protect) | {p["release"] for p in app.programs()}
    releases = app.release_ids()
    complete = sorted((r for r in releases if app.complete(r)), key=lambda r: os.stat(app.manifest(r)).st_mtime,
                      reverse=True)
    doomed = complete[max(keep, 0):] + [r for r in releases if r not in complete]
    removed = [r for r in doomed if r not in protected]
    if removed and not check_mode:
        Lock(app).hold_work()  # an incomplete release may be a dead deploy's module still at work
        discard([app.release(release) for release in removed], app.trash)
    return removed


# --- what a serving release looks like ----------------------------------------------------

# The end of each line of the site's log format (see nginx_upstream's site template):
# every upstream nginx asked for the request, and what each answered.
_UPSTREAMS = re.compile(r" us=(?P<us>.*?) ua=(?P<ua>.*)$")


class AccessLog:
    """Counts, in the site's access log from an offset on, the answers a release's socket gave
    and how many of them were 5xx (the log's ``us=`` and ``ua=`` fields, see the site template)."""

    def __init__(self, path: str, socket_path: str, offset: int | None = None) -> None:
        self.path, self.socket = path, f"unix:{socket_path}"
        size = self.size()
        # An offset beyond the end: the log was rotated since; it is read from its start.
        self.offset = size if offset is None else offset if offset <= size else 0
        self.answers = self.errors = 0

    def size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def read(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].decode("utf-8", "replace").splitlines():
            found = _UPSTREAMS.search(line)
            if not found:
                continue
            addresses = [a.strip() for a in found.group("ua").split(",")]
            statuses = [s.strip() for s in found.group("us").split(",")]
            for address, status in zip(addresses, statuses):
                if address == self.socket:
                    self.answers += 1
                    self.errors += status.isdigit() and int(status) >= 500

    def failing(self, ratio: float, minimum: int) -> str:
        if self.errors >= minimum and self.errors > ratio * self.answers:
            return f"{self.errors} of its {self.answers} answers through nginx were 5xx"
        return ""


def probe(app: App, supervisor: Supervisor, release: str, processes: list[str], check: dict) -> str | None:
    """'' when RELEASE looks alive (its programs run, its health answers through nginx), why not
    when it does not, None when it cannot be judged now: supervisord does not answer or stops,
    a program of it settles (see settling: supervisor restarted it, or the handover just
    started a singleton), or nginx refuses connections. Restarts of supervisor or nginx, as an
    OS upgrade or the rolling maintenance does them, are not the release failing. A program
    that crashed is started again (STARTING), then BACKOFF, then FATAL: judged all along."""
    groups = [app.program(release, process) for process in [WEB, *processes]]
    try:
        found = supervisor.states(groups)
    except SupervisorError:
        return None
    for group in groups:
        state = worst_state(found.get(group, []))
        if state not in ("RUNNING", "STARTING", "STOPPING"):
            return f"its program {group} is {state or 'gone'}"
    if any(settling(found.get(group, [])) for group in groups):
        return None
    ok, answered, refused = zdt_nginx.health_ok(check)
    if refused:
        return None
    return "" if ok else f"its health through nginx answered {answered}"


# --- going back to the release that served before a switch --------------------------------

def put_site(app: App, text: str, what: str) -> float:
    """TEXT as the app's site: nginx -t with it first (RuntimeError naming WHAT when refused),
    then written and one reload (NginxError when it fails). Returns the reload's seconds."""
    problem = zdt_nginx.test_config({app.site_conf: text})
    if problem:
        raise RuntimeError(f"nginx -t refused {what}: {problem}")
    write_atomic(app.site_conf, text, 0o644)
    return zdt_nginx.reload()


def go_back(app: App, supervisor: Supervisor, failed: str, links: dict, site_text: str | None, check: dict | None,
            owner: tuple[int, int], keep: bool = False) -> tuple[list[str], list[str]]:
    """Undo a switch from LINKS['current'] to FAILED: the site as it was (SITE_TEXT, tested,
    reloaded, checked through nginx), current and previous as they were, FAILED's programs
    removed (KEEP: its web program keeps running, to stand by, and the others are parked),
    the other release's parked programs active again. Each step runs even when one before it
    failed. Returns (done, failed steps with why)."""
    done, errors = [], []
    target = links.get("current", "")

    def step(what: str, action) -> None:  # noqa: ANN001
        try:
            result = action()
            done.append(what if result is None or result is True else f"{what} ({result})")
        except Exception as error:  # noqa: BLE001 - every undo step must get its turn
            errors.append(f"{what}: {error}")

    if site_text is not None:
        def site() -> str:
            seconds = put_site(app, site_text, "the previous site")
            if check:
                _checked, error = zdt_nginx.check_release(check)
                if error:
                    raise RuntimeError(error)
            return f"reloaded in {seconds} s, checked through nginx"
        step(f"nginx site back on release {target}", site)

    def restore_links() -> None:
        for name, path in (("current", app.current), ("previous", app.previous)):
            release = links.get(name, "")
            if release:
                link_atomic(app.link_value(release), path, *owner)
            elif os.path.lexists(path) and name == "previous":
                os.unlink(path)
    if target:
        step(f"current back on {target}", restore_links)

    programs = app.programs()
    doomed = [p for p in programs if p["release"] == failed]
    if keep:
        # Singletons first (at most one at a time), before the target's start again.
        doomed.sort(key=lambda p: p["kind"] != "singleton")
        for program in [p for p in doomed if p["process"] != WEB and is_active(p["text"])]:
            step(f"{program['program']} parked", lambda p=program: set_active(app, supervisor, p, False) and None)
    elif doomed:
        step(f"programs of {failed} removed", lambda: ", ".join(remove_programs(app, supervisor, doomed)))
    parked = [p for p in programs if p["release"] == target and p["process"] != WEB and not is_active(p["text"])]
    for program in parked:
        step(f"{program['program']} started again", lambda p=program: set_active(app, supervisor, p, True) and None)
    return done, errors


# --- the standby window -------------------------------------------------------------------

def load_state(app: App) -> dict | None:
    try:
        value = json.loads(read(app.standby_state) or "null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def standby_unknown_migrations(app: App, state: dict) -> tuple[list[str], str]:
    """(applied migrations the standby of the window STATE does not know, who answered:
    'window', the window's warm check, or 'django', a management command started for it)."""
    manage, path = state["manage"], app.release(state["standby"])
    answer = ask_unknown_migrations(app.migrations_socket, path)
    if answer is not None:
        return answer[0], "window"
    return unknown_migrations(path, manage["command"], manage.get("user"))[0], "django"


def start_warm_check(app: App, state: dict, log):  # noqa: ANN001, ANN201 - a Popen or None
    """The window's warm migration check of its standby (when its deploy runs migrations)."""
    manage = state.get("manage")
    if not manage:
        return None
    try:
        return serve_unknown_migrations(app.release(state["standby"]), manage["command"], manage.get("user"),
                                        app.migrations_socket)
    except (OSError, LayoutError, KeyError, ValueError) as error:  # KeyError: no such user
        log(f"no warm migration check (a rollback asks Django itself): {error!r}")
        return None


def stop_warm_check(app: App, process) -> None:  # noqa: ANN001
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if os.path.lexists(app.migrations_socket):
        os.unlink(app.migrations_socket)


def drain_site(app: App, state: dict, log) -> None:  # noqa: ANN001
    """The window's site without its backup (the standby) in place: nginx -t, one reload, and the
    workers of the configuration before it finish their requests (up to the request budget)."""
    drained = state.get("site_drained")
    if not drained or read(app.site_conf) == drained:
        return
    try:
        seconds = put_site(app, drained, f"the site without {state['standby']}")
    except (RuntimeError, zdt_nginx.NginxError) as error:
        log(f"the site keeps {state['standby']} as its backup: {error}")
        return
    gone = zdt_nginx.drain(float(state.get("drain_timeout") or 0))
    log(f"{state['standby']} left the site (reloaded in {seconds} s, "
        f"{'old nginx workers done' if gone else 'old nginx workers still busy'})")


def retire(app: App, state: dict, log) -> None:  # noqa: ANN001
    """The window is over: the standby leaves the site (nginx's backup until now), then its
    programs stop and are removed, unless it serves again."""
    lock = Lock(app)
    taken = take_lock(lock, "retire", state["standby"], wait=1800, log=log)
    if taken is None:
        return
    try:
        current, _previous = app.serving()
        if current == state["standby"]:
            log(f"{state['standby']} is current again; its programs keep running")
        else:
            if current == state["serving"]:
                drain_site(app, state, log)
            programs = [p for p in app.programs() if p["release"] == state["standby"]]
            removed = remove_programs(app, Supervisor(), programs)
            log(f"window over: removed {', '.join(removed) or 'nothing'}")
        if load_state(app) == state:
            os.unlink(app.standby_state)
    finally:
        lock.release(taken["token"])


# Who the standby helper is, in the lock and in history.
HELPER = {"user": "zdt-standby", "controller": os.uname().nodename}


def take_lock(lock: Lock, action: str, release: str, wait: float, log,  # noqa: ANN001
              who: dict | None = None) -> dict | None:
    """The app's lock for this helper (or WHO: user and controller), waiting up to WAIT seconds
    while someone else holds it (a deploy or a rollback: this helper never breaks a lock);
    None when it stays held."""
    owner = {"action": action, **(who or HELPER), "release": release, "started_at": now_utc()}
    deadline, said = time.monotonic() + wait, False
    while True:
        try:
            return lock.take(owner, wait=min(wait, 30), host_process=True)
        except LockHeld as held:
            if not said:
                log(f"waiting: {held.describe(lock.app.name)}")
                said = True
            if time.monotonic() >= deadline:
                log(f"gave up after {wait:g} s: {held.describe(lock.app.name)}")
                return None
            time.sleep(1)


def rollback(app: App, state: dict, reason: str, log, who: dict | None = None,  # noqa: ANN001
             wait: float = 10, migrations: str = "refuse", standby_seconds: float = 0,
             checked: str = "") -> dict | None:
    """Go back to the standby of the window STATE, for REASON: its helper when the serving
    release died, or WHO (user, controller) who asked for it. A database with migrations the
    standby does not know is refused (MIGRATIONS 'ignore': not checked). STANDBY_SECONDS: the
    release rolled back from keeps its web program running and stands by for that long in a
    window of its own (the requests it still serves finish; rolling forward is instant),
    else its programs are removed. Returns the history entry it recorded (result rolled_back,
    refused or failed), or None when it did nothing: the lock stayed held (its holder is in
    charge of the app) or the app changed since the window opened. CHECKED: who answered the
    migration check the caller made (the entry's migrations_checked)."""
    started = time.time()
    lock = Lock(app)
    taken = take_lock(lock, "rollback", state["standby"], wait=wait, log=log, who=who)
    if taken is None:
        return None
    entry = {"action": "rollback", "release": state["standby"], "from_release": state["serving"],
             **(who or HELPER), "started_at": now_utc(), "reason": reason}
    if checked:
        entry["migrations_checked"] = checked
    try:
        if app.serving()[0] != state["serving"] or load_state(app) != state:
            log("the app changed since the window opened; nothing to do")
            return None
        supervisor = Supervisor()
        standby_web = supervisor.state(app.program(state["standby"]))
        if standby_web != "RUNNING":
            entry.update(result="refused", reason=entry["reason"] + f"; not rolled back: the standby's program "
                         f"{app.program(state['standby'])} is {standby_web or 'gone'}")
            return entry
        if state.get("manage") and migrations != "ignore":
            try:
                unknown, entry["migrations_checked"] = standby_unknown_migrations(app, state)
            except DjangoError as error:
                unknown = [f"(check failed: {error})"]
            if unknown:
                entry.update(result="refused", reason=entry["reason"] + "; not rolled back: the database has "
                             f"migrations release {state['standby']} does not know: {', '.join(unknown)}")
                return entry
        uid, gid = owner_of(app.root)
        site_now, links_now = read(app.site_conf), dict(zip(("current", "previous"), app.serving()))
        # Asked for: previous then names the release rolled back from, as after a rollback the long way.
        keep = standby_seconds > 0
        links = {"current": state["standby"], "previous": state["serving"]} if keep else state["links"]
        done, errors = go_back(app, supervisor, state["serving"], links, read(app.site_before),
                               state.get("check_standby"), (uid, gid), keep=keep)
        os.unlink(app.standby_state)
        if keep and not errors:
            # The site without the backup, for each side of the window: the one gone back to is
            # the site as it was before the switch (rolling forward again puts the backup back).
            swapped = {**state, "serving": state["standby"], "standby": state["serving"], "opened_at": now_utc(),
                       "until": time.time() + standby_seconds, "links": links_now,
                       "check_serving": state.get("check_standby"), "check_standby": state.get("check_serving"),
                       "site_drained": state.get("standby_drained") or read(app.site_conf),
                       "standby_drained": state.get("site_drained")}
            write_atomic(app.site_before, site_now or "", 0o600, 0, 0)
            write_atomic(app.standby_state, json.dumps(swapped, indent=2, sort_keys=True) + "\n", 0o600, 0, 0)
            install_helper(app)  # this collection's helper, whatever installed the one there
            proc = systemctl("restart", app.standby_unit)
            done.append(f"{state['serving']} stands by for {standby_seconds:g} s" if proc.returncode == 0 else
                        f"NOT DONE the window of {state['serving']}: systemctl: {proc.stderr.strip()}")
        entry.update(result="rolled_back" if not errors else "failed",
                     reason=entry["reason"] + "; " + "; ".join(done + [f"NOT DONE {e}" for e in errors]))
        log(entry["reason"])
        return entry
    finally:
        entry.update(finished_at=now_utc(), duration_s=round(time.time() - started, 1))
        if "result" in entry:
            record(app, entry)
        lock.release(taken["token"])


# --- a rollback asked for inside the window (zdt_rollback, or the helper's own command) ----

def standby_not_applicable(app: App, state: dict | None, params: dict, checked: dict) -> str:
    """Why going back to the standby does not apply here, or ''. PARAMS: zdt_rollback's
    (release, standby_seconds, migrations). CHECKED['by']: who answered the migration check
    ('window': the window's warm check; 'django': a command started for it)."""
    if float(params["standby_seconds"]) <= 0:
        return "standby_seconds is 0: the release rolled back from must drain first"
    if not state:
        return "no standby window is open"
    current, previous = app.serving()
    release = previous if params["release"] in ("", "previous") else params["release"]
    if release != state["standby"]:
        return f"release {release or '(none)'} is not the one standing by ({state['standby']})"
    if current != state["serving"]:
        return f"release {state['serving']} no longer serves"
    try:
        web = Supervisor().state(app.program(state["standby"]))
    except SupervisorError as error:
        return str(error)
    if web != "RUNNING":
        return f"the standby's program {app.program(state['standby'])} is {web or 'gone'}"
    manage = state.get("manage")
    if manage and params["migrations"] == "refuse":
        try:
            unknown, checked["by"] = standby_unknown_migrations(app, state)
        except DjangoError as error:
            return f"could not ask release {state['standby']} which migrations it knows: {error}"
        if unknown:
            return f"the database has migrations release {state['standby']} does not know: {', '.join(unknown)}"
    return ""


def standby_rollback(app: App, params: dict, check_mode: bool = False) -> dict:
    """zdt_rollback's job: back to the release standing by when that applies, else say why
    (the caller goes the long way). PARAMS: release, migrations, standby_seconds, who. The
    module's result: failed (with msg) when it began and did not complete."""
    state = load_state(app)
    checked = {"by": ""}
    why = standby_not_applicable(app, state, params, checked)
    if why or check_mode:
        return {"changed": not why, "rolled_back": False, "why": why or "check mode", "migrations_checked": checked["by"]}
    who = {key: str((params.get("who") or {}).get(key, "")) for key in ("user", "controller")}
    said: list[str] = []
    # The migrations were asked about above (a Django start-up is most of this run's time).
    entry = rollback(app, state, "rollback to the release standing by (one step, in the window)", said.append,
                     who=who, wait=0, migrations="ignore", standby_seconds=float(params["standby_seconds"]),
                     checked=checked["by"])
    if entry is None:
        return {"changed": False, "rolled_back": False, "why": "; ".join(said) or "the app changed",
                "migrations_checked": checked["by"]}
    if entry["result"] == "refused":  # its program stopped since the check above
        return {"failed": True, "changed": False, "rolled_back": False, "entry": entry,
                "msg": f"Rollback of {app.name} to {state['standby']} refused: {entry['reason']}. Nothing was "
                       "changed."}
    if entry["result"] != "rolled_back":
        return {"failed": True, "changed": True, "rolled_back": False, "entry": entry,
                "msg": f"Rollback of {app.name} to {state['standby']} did not complete: {entry['reason']}"}
    return {"changed": True, "rolled_back": True, "why": "", "entry": entry, "migrations_checked": checked["by"]}


def helper_digest() -> str:
    """The helper's version: a digest of its files (the controller's collection and the
    helper installed on a host agree only when they are the same code)."""
    digest = hashlib.sha256()
    for path, content in sorted(helper_files().items()):
        digest.update(f"{path}\0{content}\0".encode("utf-8"))
    return digest.hexdigest()[:16]


def owner_of(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_uid, st.st_gid


def run_window(app: App, log) -> int:  # noqa: ANN001
    state = load_state(app)
    if state is None:
        log("no standby window open")
        return 0
    check = state.get("check_serving")
    access = AccessLog(app.access_log, app.socket(state["serving"])) if check else None
    log(f"standby window of {app.name}: {state['standby']} stands by for {state['serving']} until "
        f"{datetime.fromtimestamp(state['until'], timezone.utc):%H:%M:%SZ}")
    warm = start_warm_check(app, state, log)
    try:
        return watch_window(app, state, log, access, check)
    finally:
        stop_warm_check(app, warm)


def watch_window(app: App, state: dict, log, access: AccessLog | None, check: dict | None) -> int:  # noqa: ANN001
    watch = state.get("watch") or {}
    interval, needed = float(watch.get("interval", 1)), int(watch.get("failures", 3))
    failures, unjudged = 0, ""
    supervisor = Supervisor()
    while time.time() < state["until"]:
        if load_state(app) != state:
            log("the window was replaced or closed")
            return 0
        why: str | None = ""
        if check and app.serving()[0] == state["serving"]:
            try:
                why = probe(app, supervisor, state["serving"], state.get("processes", []), check)
                if why == "" and access is not None:
                    access.read()
                    why = access.failing(float(watch.get("max_5xx_ratio", 0.2)), int(watch.get("min_5xx", 10)))
            except Exception as error:  # noqa: BLE001 - the window outlives what it cannot judge
                why, said = None, f"cannot judge {state['serving']} now: {type(error).__name__}: {error}"
                if said != unjudged:
                    log(said)
                unjudged = said
        # None: not judged now, neither a failure nor the end of a run of them.
        if why is not None:
            failures = failures + 1 if why else 0
        if failures >= needed:
            log(f"release {state['serving']} failed {failures} checks in a row: {why}")
            rollback(app, state, f"watch: release {state['serving']} failed: {why}", log)
            return 0
        time.sleep(max(0.0, min(interval, state["until"] - time.time())))
    retire(app, state, log)
    return 0


def main(argv: list[str], log) -> int:  # noqa: ANN001
    """The launcher's entry point (it passes its own logging, to systemd's journal)."""
    parser = argparse.ArgumentParser(description="zerodowntime.web standby window of an app")
    parser.add_argument("command", choices=["standby", "rollback"])
    parser.add_argument("--app", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--digest", default="", help="rollback: the asking collection's helper_digest()")
    parser.add_argument("--params", default="", help="rollback: zdt_rollback's parameters, JSON in base64")
    args = parser.parse_args(argv)
    if args.command == "rollback":
        # zdt_rollback's job without a module run (its action plugin asks this way first):
        # its parameters in --params, its result one JSON line through LOG (the launcher's
        # stdout). A helper of other code than the asker's says so and changes nothing (the
        # module runs instead).
        if args.digest != helper_digest():
            log(json.dumps({"stale": True}))
            return 0
        params = json.loads(base64.b64decode(args.params).decode("utf-8"))
        log(json.dumps(standby_rollback(App(args.app, args.root), params)))
        return 0
    # Stopped by systemd (a new window, a rollback): end through the finally clauses, so
    # the warm check is reaped before this process exits. (In a container systemd may not
    # learn that the unit's last other process ended, and would wait for its stop timeout.)
    signal.signal(signal.SIGTERM, _stopped)
    return run_window(App(args.app, args.root), log)


def _stopped(_signum: int, _frame) -> None:  # noqa: ANN001
    raise SystemExit(0)


# --- installing this helper on the host -----------------------------------------------------

def helper_files() -> dict[str, str]:
    """Path -> content of the helper: these module_utils (pure stdlib) and a launcher."""
    files = {}
    base = f"{HELPER_DIR}/lib/{PACKAGE.replace('.', '/')}"
    parts = PACKAGE.split(".")
    for depth in range(1, len(parts) + 1):
        files[f"{HELPER_DIR}/lib/{'/'.join(parts[:depth])}/__init__.py"] = ""
    for name in HELPER_MODULES:
        data = pkgutil.get_data(PACKAGE, f"{name}.py")
        files[f"{base}/{name}.py"] = data.decode("utf-8") if data else ""
    files[LAUNCHER] = (
        "#!/usr/bin/python3\n"
        "# zerodowntime.web's host-side helper (the standby window); installed by the collection's modules.\n"
        "import sys\n"
        f"sys.path.insert(0, {HELPER_DIR + '/lib'!r})\n"
        f"from {PACKAGE} import zdt_host  # noqa: E402\n"
        "sys.exit(zdt_host.main(sys.argv[1:], lambda text: print(text, flush=True)))\n")
    return files


def unit_text(app: App) -> str:
    return (f"# {app.standby_unit}: written by zerodowntime.web\n"
            "[Unit]\n"
            f"Description=zerodowntime.web standby window of {app.name} (watch the serving release, then retire "
            "the standby)\n"
            "After=supervisor.service nginx.service\n"
            "Wants=supervisor.service nginx.service\n\n"
            "[Service]\n"
            "Type=simple\n"
            f"ExecStart=/usr/bin/python3 -I {LAUNCHER} standby --app {app.name} --root {app.root}\n"
            # A helper that fails (a bug, an error it did not expect) starts again and resumes the
            # window from its state file; one that ends the window or is stopped exits 0.
            "Restart=on-failure\n"
            "RestartSec=5\n"
            "TimeoutStopSec=15\n\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n")


def install_helper(app: App) -> list[str]:
    """Keep the helper and the app's standby unit current on the host; the paths changed."""
    changed = []
    for path, content in helper_files().items():
        if read(path) != content:
            directory(os.path.dirname(path), 0o755, 0, 0)
            write_atomic(path, content, 0o755 if path == LAUNCHER else 0o644)
            changed.append(path)
    if read(app.standby_unit_file) != unit_text(app):
        write_atomic(app.standby_unit_file, unit_text(app), 0o644)
        changed.append(app.standby_unit_file)
        systemctl("daemon-reload")
        systemctl("enable", app.standby_unit)
    return changed


def systemctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
