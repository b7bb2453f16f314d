#!/usr/bin/env bash
# `make demo`: start the local sandbox, deploy webxample 1.0.0, then deploy 2.0.0
# while hey sends 200 requests/s through nginx, and print what happened.
# Safe to run again: each run deploys 1.0.0 then 2.0.0 once more.
set -euo pipefail
cd "$(dirname "$0")/.."
SANDBOX=zdt-sandbox             # the host of inventories/sandbox/hosts.yml
OUT=build/demo
mkdir -p "$OUT"

sandbox/sandbox.sh start "$SANDBOX"
sandbox/sandbox.sh wait "$SANDBOX"
for version in 1.0.0 2.0.0; do
  [[ -f "$OUT/webxample-$version/pyproject.toml" ]] || examples/stage_release.sh "$version" "$OUT/webxample-$version"
done

echo "== Deploying webxample 1.0.0"
ansible-playbook deploy.yml -l sandbox -e "deploy_source_path=$PWD/$OUT/webxample-1.0.0"

echo "== Deploying webxample 2.0.0 while hey sends 200 requests/s through nginx"
ansible-playbook tools/load.yml -l sandbox -e load_action=start -e load_name=demo
stop_load() { ansible-playbook tools/load.yml -l sandbox -e load_action=stop -e load_name=demo >/dev/null; }
trap stop_load EXIT
start=$(date +%s.%N)
ansible-playbook deploy.yml -l sandbox -e "deploy_source_path=$PWD/$OUT/webxample-2.0.0"
end=$(date +%s.%N)
trap - EXIT
stop_load
podman exec "$SANDBOX" cat /var/tmp/zdt-load/demo.txt > "$OUT/load.txt"

python3 - "$OUT/load.txt" "$start" "$end" <<'PY'
import json, subprocess, sys
sys.path.insert(0, "tools")
from heyreport import parse

report = parse(open(sys.argv[1]).read())
seconds = float(sys.argv[3]) - float(sys.argv[2])
sh = lambda cmd: subprocess.run(["podman", "exec", "zdt-sandbox", "sh", "-c", cmd],
                                capture_output=True, text=True, check=True).stdout.strip()
print("\n== webxample in the sandbox")
print("releases on the host:")
for line in sh("for m in /srv/webxample/releases/*/release.json; do cat $m | tr -d '\\n'; echo; done").splitlines():
    m = json.loads(line)
    print(f"  {m['release_id']:<24} version {m['version']:<8} deployed {m['deployed_at']}")
print(f"current -> {sh('readlink /srv/webxample/current')}")
print(f"nginx answers with release: {sh('curl -s -o /dev/null -D - http://localhost/ | sed -n s/^X-Release:.//p')}")
print(f"during the 2.0.0 deploy: {report['requests']} requests sent, {report['failed']} failed "
      f"({report['errors']} connection errors, {report['non_2xx']} non-2xx); "
      f"latency p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, max {report['max_ms']} ms")
print(f"2.0.0 deploy wall time: {seconds:.1f} s")
sys.exit(1 if report["failed"] else 0)
PY
