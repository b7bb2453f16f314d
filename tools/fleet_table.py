#!/usr/bin/env python3
"""Print the fleet scenario's numbers (build/fleet-results.json, written by
molecule/fleet/tests/test_fleet.py): the wall time of each playbook, and the requests
hey sent through the load balancer during each case, with the failed ones."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str) -> int:
    results = json.loads(Path(path).read_text())
    timing = results.pop("timing", {})
    print(f"{'playbook':<44} {'seconds':>8}")
    for case, seconds in timing.items():
        print(f"{case:<44} {seconds:>8.1f}")
    print()
    print(f"{'load window (through the load balancer)':<44} {'requests':>8} {'failed':>7} {'p99 ms':>7} {'max ms':>7}")
    for case, report in results.items():
        print(f"{case:<44} {report.get('requests', 0):>8} {report.get('failed', 0):>7} "
              f"{report.get('p99_ms') or 0:>7} {report.get('max_ms') or 0:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/fleet-results.json"))
