# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The deploy role's input checks, before the build and before anything on a host changes.

    {{ {'deploy_app_name': deploy_app_name, ...} | zerodowntime.web.zdt_input_problems }}

returns one sentence per problem, each naming its variable ([] when the inputs are fine).
The argument specs already checked types; this checks what a spec cannot say.
"""
from __future__ import annotations

import re

from ansible_collections.zerodowntime.web.plugins.filter.zdt_programs import problems as program_problems
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import valid_app, valid_release

HOSTNAME = re.compile(r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
URL_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")
URL_PREFIX = re.compile(r"^/[A-Za-z0-9._~/-]*/$")
REL_DIR = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
WSGI = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.()]*$")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HOOKS = ("lock", "install", "release", "manage", "start", "preview", "switch", "watch", "rescue", "drain",
         "handover", "prune", "unlock")
# Whole numbers and their range.
RANGES = {
    "deploy_workers": (1, 64), "deploy_request_timeout": (1, 3600), "deploy_health_timeout": (1, 3600),
    "deploy_preview_port": (1, 65535), "deploy_standby_seconds": (0, 86400), "deploy_keep_releases": (1, 1000),
    "deploy_watch_seconds": (0, 3600), "deploy_program_settle_seconds": (1, 600),
    "deploy_listen": (1, 65535), "deploy_tls_listen": (1, 65535), "deploy_hsts_max_age": (0, 315360000),
    "deploy_canary_seconds": (0, 3600), "deploy_fleet_max_fail_percentage": (0, 100),
}


def _text_problems(name: str, value: object) -> list[str]:
    """Whitespace at either end or control characters, in a string or any string inside a list/dict."""
    found = []
    if isinstance(value, str):
        if value != value.strip():
            found.append(f"{name} has whitespace at its start or end ({value!r})")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            found.append(f"{name} contains a control character ({value!r})")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _text_problems(f"{name}[{index}]", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            found += _text_problems(f"{name}.{key}", item)
    return found


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def zdt_input_problems(inputs: dict) -> list[str]:
    found: list[str] = []
    for name, value in inputs.items():
        if name in ("deploy_env", "deploy_hooks", "deploy_release_config"):
            continue  # env values may hold any text; their keys are checked below
        found += _text_problems(name, value)
    get = inputs.get
    if not valid_app(get("deploy_app_name")):
        found.append("deploy_app_name must be a lowercase identifier of at most 32 characters ([a-z][a-z0-9_-]*), "
                     f"got {get('deploy_app_name')!r}")
    release = get("deploy_release_id", "auto")
    if release != "auto" and not valid_release(release):
        found.append('deploy_release_id must be "auto" or 1-64 characters from [A-Za-z0-9._-] starting with a letter '
                     f"or digit, without '..', got {release!r}")
    root = str(get("deploy_app_root", ""))
    if not re.fullmatch(r"/[^\s]*[^/\s]", root) or re.search(r"/\.\.?(/|$)", root):
        found.append(f"deploy_app_root must be an absolute path without spaces, '.' or '..', got {root!r}")
    if get("deploy_user") == "root":
        found.append("deploy_user must not be root")
    if not (get("deploy_source_path") or get("deploy_source_git_repo")):
        found.append("give deploy_source_path (a project on the controller) or deploy_source_git_repo")
    bad_keys = [k for k in (get("deploy_env") or {}) if not ENV_KEY.fullmatch(str(k))]
    if bad_keys:
        found.append(f"deploy_env keys must be shell identifiers, not {', '.join(map(repr, bad_keys))}")
    if not WSGI.fullmatch(str(get("deploy_wsgi_app", ""))):
        found.append(f"deploy_wsgi_app must be module:callable, got {get('deploy_wsgi_app')!r}")
    names = get("deploy_server_names") or []
    if not names:
        found.append("deploy_server_names must name at least one host")
    for name in names:
        if not isinstance(name, str) or not HOSTNAME.fullmatch(name) or len(name) > 253:
            found.append(f"deploy_server_names: {name!r} is not a host name")
    for key in ("deploy_health_path",):
        if not URL_PATH.fullmatch(str(get(key, ""))):
            found.append(f"{key} must be a URL path starting with / (no spaces), got {get(key)!r}")
    for index, path in enumerate(get("deploy_verify_paths") or []):
        if not URL_PATH.fullmatch(str(path)):
            found.append(f"deploy_verify_paths[{index}] must be a URL path starting with / (no spaces), got {path!r}")
    for key in ("deploy_static_url", "deploy_media_url"):
        if key in inputs and not URL_PREFIX.fullmatch(str(get(key))):
            found.append(f"{key} must be a URL prefix like /static/, got {get(key)!r}")
    for key in ("deploy_static_dir", "deploy_media_dir"):
        value = str(get(key) or "")
        if value and (not REL_DIR.fullmatch(value) or ".." in value.split("/")):
            found.append(f"{key} must be a relative path without '..', got {value!r}")
    for key in ("deploy_shared_dirs", "deploy_shared_files"):
        for index, value in enumerate(get(key) or []):
            if not REL_DIR.fullmatch(str(value)) or ".." in str(value).split("/"):
                found.append(f"{key}[{index}] must be a relative path without '..', got {value!r}")
    for key, (low, high) in RANGES.items():
        if key in inputs:
            number = _whole(get(key))
            if number is None or not low <= number <= high:
                found.append(f"{key} must be a whole number from {low} to {high}, got {get(key)!r}")
    found += [f"deploy_programs{p}" for p in program_problems(get("deploy_programs") or [])]
    hooks = get("deploy_hooks") or {}
    known = {f"{when}_{step}" for step in HOOKS for when in ("before", "after")}
    for key, value in hooks.items():
        if key not in known:
            found.append(f"deploy_hooks.{key} is not a hook (before_<step> or after_<step>, steps: {', '.join(HOOKS)})")
        elif not isinstance(value, str) or not value.strip():
            found.append(f"deploy_hooks.{key} must be the path of a task file")
    if str(get("deploy_rollback_migrations", "refuse")) not in ("refuse", "ignore", "unapply"):
        found.append("deploy_rollback_migrations must be refuse, ignore or unapply")
    found += _site_problems(get)
    found += _lb_problems(get)
    return found


def _lb_problems(get) -> list[str]:  # noqa: ANN001
    """The load balancer: a known host, or the user's own drain and restore tasks."""
    found = []
    names = ("deploy_lb_host", "deploy_lb_drain_tasks", "deploy_lb_restore_tasks")
    host, drain, restore = (str(get(name) or "") for name in names)
    if host and not _truthy(get("deploy_lb_known", True)):
        found.append(f"deploy_lb_host {host!r} is not a host of the inventory")
    if bool(drain) != bool(restore):
        found.append("deploy_lb_drain_tasks and deploy_lb_restore_tasks go together (set both or neither)")
    if _truthy(get("deploy_lb_drain", False)) and not host and not drain:
        found.append("deploy_lb_drain needs deploy_lb_host (an inventory host running the nginx_lb role) "
                     "or deploy_lb_drain_tasks and deploy_lb_restore_tasks")
    return found


def _site_problems(get) -> list[str]:
    """The site's listen and TLS settings."""
    found = []
    families = (get("deploy_listen_ipv4"), get("deploy_listen_ipv6"))
    if None not in families and not any(_truthy(f) for f in families):
        found.append("deploy_listen_ipv4 and deploy_listen_ipv6 are both false: the site would listen nowhere")
    cert, key = str(get("deploy_tls_certificate") or ""), str(get("deploy_tls_certificate_key") or "")
    if bool(cert) != bool(key):
        found.append("deploy_tls_certificate and deploy_tls_certificate_key go together: give both (paths on the "
                     "host) for HTTPS, or neither")
    for name, value in (("deploy_tls_certificate", cert), ("deploy_tls_certificate_key", key),
                        ("deploy_acme_webroot", str(get("deploy_acme_webroot") or ""))):
        if value and (not re.fullmatch(r"/[^\s;{}'\"]*", value) or ".." in value.split("/")):
            found.append(f"{name} must be an absolute path on the host without spaces, quotes, ';' or '..', "
                         f"got {value!r}")
    protocols = str(get("deploy_tls_protocols") or "TLSv1.2 TLSv1.3").split()
    if not protocols or any(p not in ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3") for p in protocols):
        found.append(f"deploy_tls_protocols must be TLS versions like 'TLSv1.2 TLSv1.3', got {get('deploy_tls_protocols')!r}")
    if cert and _whole(get("deploy_listen")) == _whole(get("deploy_tls_listen")):
        found.append("deploy_listen and deploy_tls_listen must differ")
    return found


def zdt_installer_problems(installer: str, uv: dict | None, machine: str = "",
                           variable: str = "deploy_installer") -> list[str]:
    """Whether the installer can run on a host: with uv, the controller's uv (the lookup
    zerodowntime.web.zdt_uv) must exist and run on the host's MACHINE ('' when unknown:
    the artifact is then built for the controller, so the hosts are of its kind)."""
    if installer == "pip":
        return []
    if installer != "uv":
        return [f"{variable} must be uv or pip, got {installer!r}"]
    uv = uv or {}
    if not uv.get("path"):
        return [f"{variable} is uv, but the controller has no uv to ship to the hosts (looked beside the build's "
                f"Python and on PATH): pip install uv on the controller, or set {variable}: pip"]
    if not uv.get("machine"):
        return [f"{variable} is uv, but the controller's uv ({uv['path']}) is no Linux program, so it cannot run "
                f"on the hosts: set {variable}: pip, or deploy from a Linux controller"]
    if machine and machine != uv["machine"]:
        return [f"{variable} is uv, but the controller's uv ({uv['path']}) is built for {uv['machine']} and this "
                f"host is {machine}: set {variable}: pip for it, or deploy from a controller of its machine"]
    return []


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in ("true", "yes", "on", "1")


class FilterModule:
    def filters(self) -> dict:
        return {"zdt_input_problems": zdt_input_problems, "zdt_installer_problems": zdt_installer_problems}
