#!/usr/bin/env python3
"""Role READMEs from meta/argument_specs.yml, and a check that specs match defaults.

usage: role_docs.py          write roles/*/README.md
       role_docs.py --check  fail if a README is stale, or if a role's defaults/main.yml
                             and its argument_specs disagree on the variable names
Each README keeps a hand-written head: everything above the line "## Variables".
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parent.parent / "roles"
MARK = "## Variables"


def render_value(value: object) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def variables_section(role: Path) -> str:
    specs = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]
    lines = [MARK, "", "Generated from `meta/argument_specs.yml` by `tools/role_docs.py`.", ""]
    for entry, spec in specs.items():
        how = f"`include_role: name: {role.name}, tasks_from: {entry}`" if entry != "main" else "the role itself"
        lines += [f"### Entry point `{entry}` ({how})", "", spec["short_description"], "",
                  "| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
        for name, opt in spec.get("options", {}).items():
            default = "**required**" if opt.get("required") else f"`{render_value(opt.get('default'))}`"
            kind = opt["type"] + (f" of {opt['elements']}" if "elements" in opt else "")
            if "choices" in opt:
                kind += " (" + ", ".join(map(str, opt["choices"])) + ")"
            desc = opt["description"] if isinstance(opt["description"], str) else " ".join(opt["description"])
            lines.append(f"| `{name}` | {kind} | {default.replace('|', '&#124;')} | {desc} |")
        lines.append("")
    return "\n".join(lines)


def key_mismatch(role: Path) -> list[str]:
    defaults = yaml.safe_load((role / "defaults/main.yml").read_text()) or {}
    specs = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]
    documented = {k for spec in specs.values() for k in spec.get("options", {})}
    optional = {k for spec in specs.values() for k, o in spec.get("options", {}).items() if not o.get("required")}
    problems = [f"{role.name}: default {k} is not in argument_specs" for k in sorted(set(defaults) - documented)]
    problems += [f"{role.name}: optional {k} has no default in defaults/main.yml" for k in sorted(optional - set(defaults))]
    return problems


def main() -> int:
    check = "--check" in sys.argv[1:]
    problems: list[str] = []
    for role in sorted(p for p in ROLES.iterdir() if (p / "meta/argument_specs.yml").is_file()):
        problems += key_mismatch(role)
        readme = role / "README.md"
        old = readme.read_text() if readme.exists() else f"# {role.name}\n\n"
        head = old.split(MARK, 1)[0].rstrip() + "\n\n"
        new = head + variables_section(role)
        if old != new:
            if check:
                problems.append(f"{readme} is stale: run tools/role_docs.py")
            else:
                readme.write_text(new)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
