# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""An entry of deploy_programs / gunicorn_supervisor_programs as the supervisor program
spec the zdt_program module renders, with the errors naming the variable."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import WEB, valid_process

KINDS = ("worker", "singleton")
SIGNALS = ("TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL")


def problems(entries: list) -> list[str]:
    """What is wrong with a list of program entries ([] when nothing)."""
    found, seen = [], set()
    if not isinstance(entries, list):
        return ["must be a list of programs"]
    for index, entry in enumerate(entries):
        where = f"[{index}]"
        if not isinstance(entry, dict):
            found.append(f"{where} must be a dict with name, command and kind")
            continue
        name = entry.get("name")
        where = f"[{index}] ({name!r})"
        if not valid_process(name) or name == WEB:
            found.append(f"{where}: name must be a lowercase identifier ([a-z][a-z0-9_]*, at most 32), not 'web'")
        elif name in seen:
            found.append(f"{where}: name used twice")
        seen.add(name)
        command = entry.get("command")
        if not isinstance(command, str) or not command.strip() or any(c in command for c in "\n\r\0"):
            found.append(f"{where}: command must be one line of text")
        if entry.get("kind", "worker") not in KINDS:
            found.append(f"{where}: kind must be worker or singleton")
        for key, low, high in (("numprocs", 1, 32), ("stopwaitsecs", 1, 86400), ("settle_seconds", 1, 600)):
            if key in entry and (not str(entry[key]).isdigit() or not low <= int(entry[key]) <= high):
                found.append(f"{where}: {key} must be a whole number from {low} to {high}")
        if entry.get("kind") == "singleton" and int(entry.get("numprocs", 1) or 1) != 1:
            found.append(f"{where}: a singleton runs one process (numprocs 1)")
        if str(entry.get("stopsignal", "TERM")).upper() not in SIGNALS:
            found.append(f"{where}: stopsignal must be one of {', '.join(SIGNALS)}")
        unknown = set(entry) - {"name", "command", "kind", "numprocs", "stopsignal", "stopwaitsecs", "settle_seconds",
                                "environment"}
        if unknown:
            found.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    return found


def zdt_program_problems(entries: list) -> list[str]:
    return problems(entries)


def zdt_program_spec(entry: dict, with_env: str, user: str, environment: dict, settle: int, stopwaitsecs: int,
                     log_max_bytes: str = "10MB", log_backups: int = 5) -> dict:
    wrong = problems([entry])
    if wrong:
        raise AnsibleFilterError("program " + "; ".join(wrong))
    return {
        "process": entry["name"], "kind": entry.get("kind", "worker"), "command": f"{with_env} {entry['command']}",
        "user": user, "numprocs": int(entry.get("numprocs", 1)),
        "stopsignal": str(entry.get("stopsignal", "TERM")).upper(),
        "stopwaitsecs": int(entry.get("stopwaitsecs", stopwaitsecs)),
        "startsecs": int(entry.get("settle_seconds", settle)), "startretries": 3,
        "environment": {**environment, **(entry.get("environment") or {})},
        "log_max_bytes": log_max_bytes, "log_backups": int(log_backups),
    }


class FilterModule:
    def filters(self) -> dict:
        return {"zdt_program_spec": zdt_program_spec, "zdt_program_problems": zdt_program_problems}
