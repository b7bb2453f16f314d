# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Every path and name zerodowntime.web uses on a host, in one place.

The modules, the host-side helper (standby windows) and, through the filter plugin
``zerodowntime.web.zdt_layout``, the roles' YAML and templates all name things with
this code, and read them back with it: nothing else builds a path from a pattern or
parses one. Pure standard library, so the host-side helper can import it too.

Names are unambiguous by construction:

- A supervisor program is ``<app>@<release>.<process>``. App names have no ``@`` and
  process names no ``.``, so the app is what precedes the only ``@`` and the process
  what follows the last ``.``. ``shop``'s programs never look like ``shop-admin``'s.
- Every program file also carries an ownership marker (app, root, release, process):
  a program is the collection's only when its file name and its marker agree with
  this layout. A file someone wrote by hand is never touched.
- nginx identifiers (upstream, map variable, log format) escape the app name
  injectively (``_`` -> ``__``, ``-`` -> ``_d``): ``a-b`` and ``a_b`` never share one.
- Per-app files are ``<app>.conf`` and ``<app>.preview.conf``: app names have no
  ``.``, so no app's site file is another app's preview file.
- A load balancer site (role nginx_lb) is ``<name>.lb.*``, its nginx identifiers start
  with ``zdtlb_`` (an app's with ``zdt_``), and its state lives in ``lb.d``, which is no
  app name: an app and a load balancer of the same name never share a file or a name.
"""
from __future__ import annotations

import json
import os
import re

APP_PATTERN = r"[a-z][a-z0-9_-]{0,31}"
RELEASE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
PROCESS_PATTERN = r"[a-z][a-z0-9_]{0,31}"
UV_VERSION_PATTERN = r"[0-9][0-9A-Za-z.+-]{0,31}"
WEB = "web"

SUPERVISOR_CONF_DIR = "/etc/supervisor/conf.d"
NGINX_CONF_DIR = "/etc/nginx/conf.d"
SYSTEMD_DIR = "/etc/systemd/system"
STATE_DIR = "/var/lib/zerodowntime"
HELPER_DIR = "/usr/local/lib/zerodowntime"
NGINX_LOG_DIR = "/var/log/nginx"
SUPERVISOR_LOG_DIR = "/var/log/supervisor"

MARKER = "; zerodowntime.web program: "

# nginx's binary and its upgrade (roles/nginx_upgrade): the binary that served before the
# swap is kept as a hard link (a rollback renames it back), the new one is staged beside
# it (same filesystem, so the swap is one rename); one upgrade at a time per host.
NGINX_BINARY = "/usr/sbin/nginx"
NGINX_BINARY_BEFORE = "/usr/sbin/.nginx.zdt-before"
NGINX_BINARY_STAGED = "/usr/sbin/.nginx.zdt-staged"
NGINX_UPGRADE_LOCK = f"{STATE_DIR}/nginx-upgrade.lock"

# The load balancer (roles/nginx_lb): one site per name, in front of app hosts. Its state
# (what `main` configured, which members are drained) is read by drain/restore/report,
# which other hosts delegate to the load balancer. lb.d is not an app name, so
# apps_on_host() (the nginx upgrade's list of apps) never takes it for one.
LB_PATTERN = r"[a-z0-9_-]{1,32}"
LB_STATE_DIR = f"{STATE_DIR}/lb.d"
NGINX_DEFAULT_SITE = "/etc/nginx/sites-enabled/default"

_APP = re.compile(APP_PATTERN)
_LB = re.compile(LB_PATTERN)
_RELEASE = re.compile(RELEASE_PATTERN)
_PROCESS = re.compile(PROCESS_PATTERN)
_UV_VERSION = re.compile(UV_VERSION_PATTERN)


class LayoutError(ValueError):
    """A name that the layout refuses (it would be ambiguous or unsafe on a host)."""


def valid_app(name: object) -> bool:
    return isinstance(name, str) and bool(_APP.fullmatch(name))


def valid_release(release: object) -> bool:
    return isinstance(release, str) and bool(_RELEASE.fullmatch(release)) and ".." not in release


def valid_process(process: object) -> bool:
    return isinstance(process, str) and bool(_PROCESS.fullmatch(process))


def check_release(release: str) -> str:
    if not valid_release(release):
        raise LayoutError(f"invalid release id {release!r}: 1-64 characters from [A-Za-z0-9._-], "
                          "starting with a letter or digit, without '..'")
    return release


def check_process(process: str) -> str:
    if not valid_process(process):
        raise LayoutError(f"invalid program name {process!r}: a lowercase identifier ([a-z][a-z0-9_]*)")
    return process


def check_uv_version(version: str) -> str:
    if not (isinstance(version, str) and _UV_VERSION.fullmatch(version)) or ".." in version:
        raise LayoutError(f"invalid uv version {version!r}: a version like 0.13.9")
    return version


def nginx_ident(app: str) -> str:
    """The app name as an nginx identifier, injectively: '_' -> '__', '-' -> '_d'."""
    return app.replace("_", "__").replace("-", "_d")


def valid_lb(name: object) -> bool:
    return isinstance(name, str) and bool(_LB.fullmatch(name))


def parse_program(name: str) -> tuple[str, str, str] | None:
    """(app, release, process) of a program name this layout made, else None."""
    app, at, rest = name.partition("@")
    release, dot, process = rest.rpartition(".")
    if not (at and dot and valid_app(app) and valid_release(release) and (process == WEB or valid_process(process))):
        return None
    return app, release, process


def apps_on_host(state_dir: str = STATE_DIR) -> list[str]:
    """Names of the apps deployed on this host (each has its state directory), sorted."""
    try:
        names = os.listdir(state_dir)
    except OSError:
        return []
    return sorted(n for n in names if valid_app(n) and os.path.isdir(f"{state_dir}/{n}"))


class App:
    """The layout of one app on a host."""

    def __init__(self, name: str, root: str | None = None, *, conf_dir: str = SUPERVISOR_CONF_DIR,
                 nginx_dir: str = NGINX_CONF_DIR, state_dir: str = STATE_DIR) -> None:
        if not valid_app(name):
            raise LayoutError(f"invalid app name {name!r}: a lowercase identifier of at most 32 characters "
                              "([a-z][a-z0-9_-]*)")
        root = (root or f"/srv/{name}").rstrip("/")
        if not root.startswith("/") or re.search(r"(^|/)\.\.?(/|$)|\s", root) or len(root) < 2:
            raise LayoutError(f"invalid app root {root!r}: an absolute path without '.', '..' or spaces")
        self.name, self.root = name, root
        self.conf_dir, self.nginx_dir = conf_dir, nginx_dir
        # The app's own tree (its user owns it).
        self.releases = f"{root}/releases"
        self.shared = f"{root}/shared"
        self.run = f"{root}/run"
        self.current = f"{root}/current"
        self.previous = f"{root}/previous"
        self.history = f"{root}/history.jsonl"
        # The installer (venv_release_installer: uv): the controller's uv binary, shipped
        # once per version, root's (0755) in a directory of root's; the wheelhouse uv installs
        # from (root's too: the release's wheels, one that did not change kept as it was, so
        # uv's cache serves it); and uv's cache, the app user's, kept across releases (each
        # release's venv hard-links its files from it).
        self.tools = f"{root}/.zdt"
        self.wheelhouse = f"{self.tools}/wheelhouse"
        # What the wheelhouse holds ("sha256  name" lines, root's): the controller ships a
        # release only the wheels that are not there with the same content.
        self.wheelhouse_index = f"{self.tools}/wheelhouse.sha256"
        self.uv_cache = f"{root}/.cache/uv"
        # Releases being removed (root's): a pruned release is renamed here at once and
        # removed in the background (zdt_files.discard).
        self.trash = f"{self.tools}/trash"
        # State only root may change: the lock, the standby window, the site to go back to.
        self.state = f"{state_dir}/{name}"
        self.lock = f"{self.state}/lock"
        self.standby_state = f"{self.state}/standby.json"
        self.site_before = f"{self.state}/site.before.conf"
        # The site as it will be when the standby window ends (the backup out of it): at a
        # switch with a backup, written beside the site; the window's helper puts it in place.
        self.site_drained = f"{self.state}/site.drained.conf"
        self.once = f"{self.state}/once.json"
        # The standby window's warm migration check: the helper's child, the standby's
        # code loaded once, answers on this socket (root's) which applied migrations it
        # does not know, asking the database each time.
        self.migrations_socket = f"{self.state}/migrations.sock"
        # How the site is checked through nginx (written at each switch): what the nginx
        # binary upgrade asks of every app on the host.
        self.site_record = f"{self.state}/site.json"
        # nginx
        self.ident = nginx_ident(name)
        self.site_conf = f"{nginx_dir}/{name}.conf"
        self.preview_conf = f"{nginx_dir}/{name}.preview.conf"
        self.upstream = f"zdt_{self.ident}"
        self.preview_upstream = f"zdt_{self.ident}_preview"
        self.release_var = f"zdt_release_{self.ident}"
        self.log_format = f"zdt_{self.ident}"
        self.access_log = f"{NGINX_LOG_DIR}/{name}.access.log"
        self.health_log = f"{NGINX_LOG_DIR}/{name}.health.log"
        # systemd: the unit that runs the standby window (watch, then retire).
        self.standby_unit = f"zdt-standby-{name}.service"
        self.standby_unit_file = f"{SYSTEMD_DIR}/{self.standby_unit}"

    # --- releases ---------------------------------------------------------------------
    def release(self, release: str) -> str:
        return f"{self.releases}/{check_release(release)}"

    def manifest(self, release: str) -> str:
        return f"{self.release(release)}/release.json"

    def uv(self, version: str) -> str:
        """The uv binary of this version on the host."""
        return f"{self.tools}/uv-{check_uv_version(version)}"

    def socket(self, release: str) -> str:
        return f"{self.run}/{check_release(release)}.sock"

    def complete(self, release: str) -> bool:
        return valid_release(release) and os.path.isfile(self.manifest(release))

    def link_target(self, link: str) -> str:
        """Release id a link (current, previous) points at, '' when none or not a release of this app."""
        try:
            target = os.readlink(link).rstrip("/")
        except OSError:
            return ""
        head, _sep, release = target.rpartition("/")
        ok = head == (self.releases if target.startswith("/") else "releases")
        return release if ok and valid_release(release) else ""

    def link_value(self, release: str) -> str:
        """What current/previous contain when they point at RELEASE (relative, as the release moves with the root)."""
        return f"releases/{check_release(release)}"

    def serving(self) -> tuple[str, str]:
        return self.link_target(self.current), self.link_target(self.previous)

    def release_ids(self) -> list[str]:
        try:
            names = os.listdir(self.releases)
        except OSError:
            return []
        return sorted(n for n in names if valid_release(n) and os.path.isdir(f"{self.releases}/{n}"))

    # --- supervisor programs ------------------------------------------------------------
    def program(self, release: str, process: str = WEB) -> str:
        if process != WEB:
            check_process(process)
        return f"{self.name}@{check_release(release)}.{process}"

    def program_conf(self, release: str, process: str = WEB) -> str:
        return f"{self.conf_dir}/{self.program(release, process)}.conf"

    def program_log(self, release: str, process: str = WEB) -> str:
        return f"{SUPERVISOR_LOG_DIR}/{self.program(release, process)}.log"

    def marker(self, release: str, process: str = WEB, kind: str = WEB) -> str:
        """The ownership line written first in a program file."""
        return MARKER + json.dumps({"app": self.name, "root": self.root, "release": check_release(release),
                                    "process": process, "kind": kind}, sort_keys=True)

    def owns(self, path: str, text: str | None) -> dict | None:
        """The marker of a program file when it is one of this app's, else None: the file
        name and the marker must both be what this layout writes."""
        if text is None or not text.startswith(MARKER):
            return None
        try:
            marker = json.loads(text[len(MARKER):].split("\n", 1)[0])
        except ValueError:
            return None
        if not isinstance(marker, dict) or marker.get("app") != self.name or marker.get("root") != self.root:
            return None
        release, process = marker.get("release"), marker.get("process")
        if not valid_release(release) or not (process == WEB or valid_process(process)):
            return None
        if path != self.program_conf(release, process):
            return None
        return marker

    def programs(self) -> list[dict]:
        """Every program file of this app on the host: marker plus path, sorted by name."""
        found = []
        try:
            names = sorted(os.listdir(self.conf_dir))
        except OSError:
            return found
        for name in names:
            if not name.endswith(".conf") or not name.startswith(self.name + "@"):
                continue  # a quick filter only; ownership is the marker below
            path = f"{self.conf_dir}/{name}"
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                continue
            marker = self.owns(path, text)
            if marker is not None:
                found.append({**marker, "path": path, "program": self.program(marker["release"], marker["process"]),
                              "text": text})
        return found

    def as_dict(self) -> dict:
        """Everything above, for YAML and templates (the filter plugin)."""
        return {key: value for key, value in vars(self).items() if isinstance(value, str)}

    def release_dict(self, release: str, processes: list[str] | None = None) -> dict:
        return {
            "id": release, "path": self.release(release), "manifest": self.manifest(release),
            "socket": self.socket(release), "program": self.program(release),
            "program_conf": self.program_conf(release), "link": self.link_value(release),
            "programs": {p: self.program(release, p) for p in [WEB] + list(processes or [])},
        }


class Lb:
    """The layout of one load balancer site (role nginx_lb) on its host."""

    def __init__(self, name: str, *, nginx_dir: str = NGINX_CONF_DIR, state_dir: str = LB_STATE_DIR) -> None:
        if not valid_lb(name):
            raise LayoutError(f"invalid load balancer name {name!r}: 1-32 characters from [a-z0-9_-]")
        self.name = name
        self.state_dir = state_dir
        # What `main` configured and which members are drained (JSON), and the lock that
        # serializes every change of it (the state file itself is replaced by a rename).
        self.state = f"{state_dir}/{name}.json"
        self.lock = f"{state_dir}/{name}.lock"
        self.ident = nginx_ident(name)
        self.upstream_conf = f"{nginx_dir}/{name}.lb.upstream.conf"
        self.server_conf = f"{nginx_dir}/{name}.lb.conf"
        self.upstream = f"zdtlb_{self.ident}"
        self.log_format = f"zdtlb_{self.ident}"
        self.access_log = f"{NGINX_LOG_DIR}/{name}.lb.access.log"

    def as_dict(self) -> dict:
        return {key: value for key, value in vars(self).items() if isinstance(value, str)}
