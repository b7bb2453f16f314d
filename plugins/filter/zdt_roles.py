# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The variables set for the roles the deploy role includes (venv_release,
gunicorn_supervisor, nginx_upstream, nginx_lb), checked once against those roles'
argument specs before anything on a host changes:

    {{ {'gunicorn_supervisor_threads': 4, ...} | zerodowntime.web.zdt_role_problems(role_path | dirname) }}

returns one sentence per problem, each naming its variable ([] when they are fine). The
deploy role then includes those roles without validating their specs at each step.
"""
from __future__ import annotations

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROLES = ("venv_release", "gunicorn_supervisor", "nginx_upstream", "nginx_lb")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _options(roles_dir: str, role: str) -> dict:
    """Every option of the role's entry points; none required (the deploy sets those)."""
    with open(f"{roles_dir}/{role}/meta/argument_specs.yml", encoding="utf-8") as handle:
        entries = (yaml.load(handle, Loader=_LOADER) or {}).get("argument_specs") or {}  # noqa: S506 - a safe loader
    options: dict = {}
    for entry in entries.values():
        for name, option in ((entry or {}).get("options") or {}).items():
            options.setdefault(name, {**option, "required": False})
    return options


def zdt_role_problems(values: dict, roles_dir: str) -> list[str]:
    found: list[str] = []
    for role in ROLES:
        spec = {name: option for name, option in _options(roles_dir, role).items() if name in values}
        if spec:
            result = ArgumentSpecValidator(spec).validate({name: values[name] for name in spec})
            found += [f"{message} (a variable of the {role} role)" for message in result.error_messages]
    return found


class FilterModule:
    def filters(self) -> dict:
        return {"zdt_role_problems": zdt_role_problems}
