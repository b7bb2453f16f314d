#!/usr/bin/env bash
# The deploy on every ansible-core minor that meta/runtime.yml claims: for each one, in its
# own venv (tools/ansible_test.sh venv), a fresh sandbox container gets a first deploy, a new
# release and a no-op deploy of webxample with deploy.yml, as a user runs it.
# Checked each time: the playbook's exit code, the release nginx answers with (the new one
# after a deploy, the same one after the no-op), and changed=0 for the no-op.
#
# usage: tools/core_smoke.sh [MINOR ...]   (default: every claimed minor)
# Env: SMOKE_SSH_PORT (default 2226), SANDBOX_IMAGE (as sandbox/sandbox.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
MINORS=("$@")
[[ ${#MINORS[@]} -gt 0 ]] || MINORS=(2.16 2.17 2.18 2.19 2.20)
NAME=zdt-core-smoke
export SANDBOX_SSH_PORT=${SMOKE_SSH_PORT:-2226}
OUT=$REPO/build/core-smoke
mkdir -p "$OUT"
[[ -f $OUT/webxample-1.0.0/pyproject.toml ]] || examples/stage_release.sh 1.0.0 "$OUT/webxample-1.0.0" >/dev/null
trap 'sandbox/sandbox.sh stop "$NAME" >/dev/null' EXIT

serving() {  # the release nginx answers with
  podman exec "$NAME" curl -s -o /dev/null -D - http://localhost/ | sed -n 's/^X-Release: //p' | tr -d '\r'
}

summary=()
status=0
for minor in "${MINORS[@]}"; do
  venv=$(tools/ansible_test.sh venv "$minor")
  version=$("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)')
  sandbox/sandbox.sh stop "$NAME" >/dev/null
  sandbox/sandbox.sh start "$NAME" >/dev/null
  sandbox/sandbox.sh wait "$NAME" >/dev/null
  before=""
  result="passed"
  times=()
  for run in first new-release no-op; do
    # Each minor deploys its own release (the env differs); the no-op repeats the new release.
    marker="$minor"; [[ $run == first ]] && marker="$minor-first"
    log=$OUT/$minor-$run.log
    start=$(date +%s%N)
    if ! "$venv/bin/ansible-playbook" deploy.yml -l sandbox -e "ansible_port=$SANDBOX_SSH_PORT" \
         -e "deploy_source_path=$OUT/webxample-1.0.0" \
         -e "deploy_env={{ webxample_env | combine({'WEBXAMPLE_SMOKE': '$marker'}) }}" >"$log" 2>&1; then
      result="FAILED: $run deploy (see $log)"; tail -25 "$log"; break
    fi
    ms=$((($(date +%s%N) - start) / 1000000))
    times+=("$run $((ms / 1000)).$((ms % 1000 / 100)) s")
    now=$(serving)
    current=$(podman exec "$NAME" readlink /srv/webxample/current)
    if [[ -z $now || $now != "$(basename "$current")" ]]; then
      result="FAILED: after the $run deploy nginx answers '$now', current is '$current'"; break
    fi
    if [[ $run == no-op ]]; then
      [[ $now == "$before" ]] || { result="FAILED: the no-op changed the release ($before -> $now)"; break; }
      grep -Eq 'changed=0 +unreachable=0 +failed=0' "$log" ||
        { result="FAILED: the no-op changed something: $(grep -o 'changed=[0-9]*' "$log")"; break; }
    elif [[ $now == "$before" ]]; then
      result="FAILED: the $run deploy did not change the release ($now)"; break
    fi
    before=$now
  done
  [[ $result == passed ]] || status=1
  summary+=("ansible-core $version ($("$venv/bin/python" -c 'import platform; print(platform.python_version())')): $result; ${times[*]}")
done

echo "== deploy smoke test per ansible-core (first deploy, new release, no-op)"
printf '  %s\n' "${summary[@]}"
exit $status
