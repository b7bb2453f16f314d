#!/usr/bin/env python3
"""Read hey's text report and print the numbers that matter, as JSON.

hey's CSV output leaves out requests that failed to connect, so the text
report is the complete record: every request ends up either in the status code
distribution or in the error distribution.

usage: heyreport.py REPORT.txt   (or - for stdin)
"""
from __future__ import annotations

import json
import re
import sys

_SECONDS = r"([0-9.]+) secs"


def parse(text: str) -> dict:
    """Return requests, failed, non_2xx, errors, rps, p50_ms, p99_ms, max_ms, seconds."""
    if "Summary:" not in text:
        raise ValueError("not a hey report (no Summary:)")
    found = re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses", text, re.MULTILINE)
    # A file written over without truncation holds the tail of the report before it: its
    # status lines would count instead of this report's (load units write with truncate:).
    if text.count("Status code distribution:") > 1 or len({code for code, _n in found}) != len(found):
        raise ValueError("more than one hey report in one file (an earlier, longer one not truncated)")
    statuses = {int(code): int(count) for code, count in found}
    error_block = text.split("Error distribution:", 1)[1] if "Error distribution:" in text else ""
    errors = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]\s", error_block, re.MULTILINE))
    responses = sum(statuses.values())
    non_2xx = sum(n for code, n in statuses.items() if not 200 <= code < 300)

    def seconds(label: str) -> float | None:
        match = re.search(rf"^\s*{label}:\s+{_SECONDS}", text, re.MULTILINE)
        return float(match.group(1)) if match else None

    def percentile(pct: int) -> float | None:
        match = re.search(rf"^\s*{pct}% in {_SECONDS}", text, re.MULTILINE)
        return round(float(match.group(1)) * 1000, 1) if match else None

    slowest = seconds("Slowest")
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    return {
        "requests": responses + errors,
        "failed": non_2xx + errors,
        "non_2xx": non_2xx,
        "errors": errors,
        "statuses": statuses,
        "seconds": seconds("Total"),
        "rps": float(rps.group(1)) if rps else None,
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
        "max_ms": round(slowest * 1000, 1) if slowest is not None else None,
    }


def main() -> None:
    source = sys.stdin if sys.argv[1:] in ([], ["-"]) else open(sys.argv[1])
    with source:
        print(json.dumps(parse(source.read())))


if __name__ == "__main__":
    main()
