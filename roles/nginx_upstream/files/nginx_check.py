#!/usr/bin/env python3
"""Test a candidate nginx file in the full configuration before it goes live.

usage: nginx_check.py CANDIDATE DEST [MAIN_CONF]

Ansible's `validate:` gives us the candidate in a temporary file. A site file is
a fragment that `nginx -t` cannot test alone, so this writes a temporary main
configuration in which DEST is replaced by CANDIDATE (every other include stays
as it is) and runs `nginx -t -c` on it. When DEST is the main configuration
itself, the candidate is tested as the main configuration. Nothing live changes.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import re
import subprocess
import sys
import tempfile

INCLUDE = re.compile(r"^(?P<indent>[ \t]*)include[ \t]+(?P<pattern>[^;]+);", re.MULTILINE)


def rewrite(main_text: str, prefix: str, candidate: str, dest: str | None) -> str:
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
        # DEST is (or would be) included here: include the candidate in its place.
        listed = sorted(kept + [dest])
        return "\n".join(f"{indent}include {candidate if f == dest else f};" for f in listed)

    return INCLUDE.sub(expand, main_text)


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    candidate, dest = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    main_conf = os.path.abspath(sys.argv[3]) if len(sys.argv) == 4 else "/etc/nginx/nginx.conf"
    prefix = os.path.dirname(main_conf)
    if os.path.realpath(dest) == os.path.realpath(main_conf):
        with open(candidate) as handle:
            text = rewrite(handle.read(), prefix, candidate, None)
    else:
        with open(main_conf) as handle:
            text = rewrite(handle.read(), prefix, candidate, dest)
    with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="nginx-check-", delete=False) as test_conf:
        test_conf.write(text)
    try:
        proc = subprocess.run(["nginx", "-t", "-q", "-c", test_conf.name], capture_output=True, text=True)
    finally:
        os.unlink(test_conf.name)
    sys.stderr.write(proc.stderr.replace(candidate, dest))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
