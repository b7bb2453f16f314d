# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The on-host layout for YAML and templates: the same code the modules use
(module_utils ``zdt_layout``), so the roles never spell a path or a name themselves.

    {{ deploy_app_name | zerodowntime.web.zdt_app(deploy_app_root) }}
        -> {root, releases, shared, run, current, previous, history, lock, site_conf,
            preview_conf, upstream, preview_upstream, release_var, access_log, ...}
    {{ deploy_app_name | zerodowntime.web.zdt_release(deploy_app_root, release_id, ['worker']) }}
        -> {id, path, manifest, socket, program, program_conf, link, programs}
"""
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError


def zdt_app(name: str, root: str | None = None) -> dict:
    try:
        return App(name, root or None).as_dict()
    except LayoutError as error:
        raise AnsibleFilterError(str(error)) from None


def zdt_release(name: str, root: str | None, release: str, processes: list | None = None) -> dict:
    try:
        return App(name, root or None).release_dict(release, list(processes or []))
    except LayoutError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self) -> dict:
        return {"zdt_app": zdt_app, "zdt_release": zdt_release}
