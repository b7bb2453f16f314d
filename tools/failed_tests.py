#!/usr/bin/env python3
"""Print the failed and errored tests of a pytest JUnit XML report, one short block each,
so that the end of a CI log names them (make molecule runs it when a scenario fails)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(paths: list[str]) -> int:
    for path in paths:
        if not Path(path).exists():
            print(f"{path}: no report (the scenario failed before its tests)")
            continue
        for case in ET.parse(path).getroot().iter("testcase"):
            for outcome in ("failure", "error"):
                found = case.find(outcome)
                if found is None:
                    continue
                name = f"{case.get('classname', '')}::{case.get('name', '')}"
                detail = (found.get("message") or found.text or "").strip().splitlines()
                print(f"{outcome.upper()} {name}")
                for line in detail[:6]:
                    print(f"    {line[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
