#!/usr/bin/env bash
# ansible-test sanity (or units) of the collection as it ships, for each claimed
# ansible-core minor version, on a machine that cannot reach ansible-test's download host.
#
# usage: tools/ansible_test.sh sanity|units [MINOR ...]   (default: every version in
#        meta/runtime.yml's claim, see CORE_VERSIONS below)
#        tools/ansible_test.sh venv MINOR   (make that venv if missing, print its path:
#        tools/core_smoke.sh deploys with it)
#
# How it runs offline, the supported way:
# - each ansible-core minor gets its own venv (.cache/venv-core-<minor>) with that
#   ansible-core and the requirements its own ansible-test pins for sanity and units
#   (ansible_test/_data/requirements/*.txt), installed from the package index;
# - ansible-test bootstraps pip into the venvs it makes with a script it downloads from
#   ci-files.testing.ansible.com, which these machines cannot reach; its error message names
#   the cache path where that script may be saved instead (~/.ansible/test/cache/
#   get_pip_<version>.py). The script saved there runs pip from pip's own wheel (taken from
#   the package index), as get-pip.py itself does;
# - the collection is built with `ansible-galaxy collection build` (build_ignore applies) and
#   unpacked under build/ansible-test/ansible_collections/zerodowntime/web, where
#   ansible-test runs with --local --python <the venv's>.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
COMMAND=${1:?usage: tools/ansible_test.sh sanity|units|venv [MINOR ...]}
shift
# The ansible-core versions requires_ansible claims, each at its newest patch.
declare -A CORE_VERSIONS=([2.16]=2.16.19 [2.17]=2.17.14 [2.18]=2.18.19 [2.19]=2.19.14 [2.20]=2.20.10)
MINORS=("$@")
[[ ${#MINORS[@]} -gt 0 ]] || MINORS=(2.16 2.17 2.18 2.19 2.20)

# The controller Python for a minor: python3 (3.11 here), except where that ansible-core
# needs a newer one (2.20: Python >= 3.12), found on PATH or among pyenv's versions.
python_for() {
  case $1 in
    2.20)
      local candidate
      for candidate in python3.12 python3.13 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[23]*/bin/python3; do
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
          command -v "$candidate"; return
        fi
      done
      echo "ansible-core $1 needs Python >= 3.12 on the controller; none found" >&2; return 1 ;;
    *) command -v "${PYTHON:-python3}" ;;
  esac
}

venv_for() {
  local minor=$1 venv=$REPO/.cache/venv-core-$1
  if [[ ! -f $venv/.installed-${CORE_VERSIONS[$minor]} ]]; then
    rm -rf "$venv"
    "$(python_for "$minor")" -m venv "$venv"
    # uv (from the dev venv) installs in seconds what pip takes minutes for.
    uv pip install -q --python "$venv/bin/python" "ansible-core==${CORE_VERSIONS[$minor]}"
    local data
    data=$("$venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_data/requirements
    local args=()
    for file in "$data"/sanity.*.txt "$data"/units.txt; do args+=(-r "$file"); done
    uv pip install -q --python "$venv/bin/python" "${args[@]}"
    touch "$venv/.installed-${CORE_VERSIONS[$minor]}"
  fi
  echo "$venv"
}

pip_bootstrap() {
  # The pip versions this ansible-test bootstraps into its venvs.
  local venv=$1 version
  for version in $("$venv/bin/python" - <<'PY'
import ansible_test, os, re
text = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal/python_requirements.py")).read()
print(" ".join(sorted(set(re.findall(r"pip='([0-9.]+)'", text)))))
PY
  ); do
    local wheel_dir=$REPO/.cache/pip-bootstrap script=$HOME/.ansible/test/cache/get_pip_${version//./_}.py
    mkdir -p "$wheel_dir" "$(dirname "$script")"
    [[ -f $wheel_dir/pip-$version-py3-none-any.whl ]] ||
      "$venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$wheel_dir" "pip==$version"
    cat >"$script" <<PY
# ansible-test's pip bootstrap, offline (written by zerodowntime.web's tools/ansible_test.sh):
# pip runs from its own wheel, as get-pip.py does, and installs what ansible-test asks for.
import runpy, sys
sys.path.insert(0, "$wheel_dir/pip-$version-py3-none-any.whl")
sys.argv = ["pip", "install"] + [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
PY
  done
}

if [[ $COMMAND == venv ]]; then
  for minor in "${MINORS[@]}"; do venv_for "$minor"; done
  exit 0
fi

# The collection as it ships.
OUT=$REPO/build/ansible-test
rm -rf "$OUT" && mkdir -p "$OUT/dist" "$OUT/ansible_collections/zerodowntime/web"
ansible-galaxy collection build --force --output-path "$OUT/dist" "$REPO" >/dev/null
tar -xzf "$OUT"/dist/zerodowntime-web-*.tar.gz -C "$OUT/ansible_collections/zerodowntime/web"
cd "$OUT/ansible_collections/zerodowntime/web"
git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -q -m built

status=0
for minor in "${MINORS[@]}"; do
  venv=$(venv_for "$minor")
  pip_bootstrap "$venv"
  python_version=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  echo "== ansible-test $COMMAND, ansible-core ${CORE_VERSIONS[$minor]}, Python $python_version"
  start=$SECONDS
  if "$venv/bin/ansible-test" "$COMMAND" --local --python "$python_version" --color no; then
    echo "== ansible-core ${CORE_VERSIONS[$minor]}: $COMMAND passed in $((SECONDS - start)) s"
  else
    echo "== ansible-core ${CORE_VERSIONS[$minor]}: $COMMAND FAILED"
    status=1
  fi
done
exit $status
