# zerodowntime.web — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV       := $(CURDIR)/.venv
BIN        := $(VENV)/bin
IMAGE      ?= localhost/zerodowntime-sandbox:debian12
IMAGE13    ?= localhost/zerodowntime-sandbox:debian13
SANDBOX    ?= zdt-sandbox
APT_PKGS   := podman runc debootstrap slirp4netns uidmap git openssh-client

export PATH             := $(BIN):$(PATH)
export CONTAINERS_CONF  ?= $(CURDIR)/sandbox/containers.conf
export ANSIBLE_CONFIG   := $(CURDIR)/ansible.cfg
# collections/ links this repository in as zerodowntime.web (its modules are in plugins/).
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/collections:$(HOME)/.ansible/collections:/usr/share/ansible/collections
export SANDBOX_IMAGE    := $(IMAGE)
export MOLECULE_IMAGE   ?= $(IMAGE)
export MOLECULE_IMAGE13 ?= $(IMAGE13)
export SANDBOX_KEY      ?= $(HOME)/.ssh/zerodowntime-sandbox_ed25519

.PHONY: help setup apt venv image demo bench bench-fleet test test-failures lint sanity units core-smoke checks changelog molecule clean

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: apt venv image  ## Install apt packages, the Python venv and the sandbox image

apt: .cache/apt.stamp
.cache/apt.stamp:
	@mkdir -p .cache
	@if ! dpkg -s $(APT_PKGS) >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS); fi
	@touch $@

venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $$(grep '^uv==' requirements-dev.txt)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-dev.txt
	@touch $@

image: apt  ## Build the sandbox images offline (Debian 12 and 13: debootstrap + podman import), if missing
	@if [ "$(MOLECULE_IMAGE)" = "$(IMAGE)" ]; then sandbox/build-image.sh && \
	  SANDBOX_SUITE=trixie SANDBOX_IMAGE=$(IMAGE13) sandbox/build-image.sh; fi
	@sandbox/sandbox.sh key >/dev/null

demo: setup  ## Deploy webxample v1, then v2 under load, into a local sandbox; print the numbers
	tools/demo.sh

bench: setup  ## Benchmark: restart vs hup vs zerodowntime deploys (installer uv, then pip), boot delays 0/10/30 s (~33 min)
	python tools/bench.py

bench-fleet: setup  ## The fleet scenario (3 app hosts, 1 load balancer), then its table: seconds and requests per case (~8 min)
	$(MAKE) molecule SCENARIOS=fleet
	python tools/fleet_table.py build/fleet-results.json

lint: venv  ## ansible-lint (production profile), ruff, role docs, changelog fragments, plugin and role docs
	ansible-lint
	ruff check examples tools molecule plugins tests
	# blank lines as ansible-test's pep8 wants them (ruff has these rules in preview only)
	ruff check --preview --select E30 examples tools molecule plugins tests
	python tools/role_docs.py --check
	antsibull-changelog lint
	antsibull-docs lint-collection-docs --plugin-docs --skip-rstcheck .

sanity: venv  ## ansible-test sanity of the built collection on every claimed ansible-core (offline bootstrap)
	tools/ansible_test.sh sanity

units: venv  ## ansible-test units (tests/unit: module_utils, filters, modules) on every claimed ansible-core (2.16-2.20)
	tools/ansible_test.sh units

core-smoke: setup  ## A first deploy, a new release and a no-op with each claimed ansible-core (2.16-2.20)
	tools/core_smoke.sh

# sanity and units (CPU) while the deploy smoke test (mostly waiting on its container) runs
# beside them; the venvs of every ansible-core are made first, once.
checks: setup
	@tools/ansible_test.sh venv >/dev/null
	@mkdir -p build; tools/core_smoke.sh > build/core-smoke.log 2>&1 & smoke=$$!; \
	  tools/ansible_test.sh sanity && tools/ansible_test.sh units; tests=$$?; \
	  wait $$smoke; smoked=$$?; cat build/core-smoke.log; \
	  [ $$tests -eq 0 ] && [ $$smoked -eq 0 ]

changelog: venv  ## Collect changelogs/fragments into changelog.yaml and CHANGELOG.md (release 0.1.0)
	antsibull-changelog release --version $$(sed -n 's/^version: //p' galaxy.yml) --update-existing

# Each run is a scenario, on the Debian 12 image unless it names another (e.g. realapp@debian13;
# `default` runs a Debian 12 and a Debian 13 host at once).
SCENARIOS ?= default fleet realapp failures

# Each run's output also goes to build/molecule-<run>.log and its tests' report to
# build/junit-<run>.xml; when one fails, its failed tests are printed last, where the
# tail of a CI log shows them.
molecule: setup  ## The core scenario (Debian 12 and 13), a fleet of 3 app hosts behind a load balancer, a real Django project beside another app and nginx's binary upgrade, the failure matrix
	@mkdir -p build; rm -f build/junit-*.xml; for run in $(SCENARIOS); do \
	  scenario=$${run%@*}; platform=$${run#$$scenario}; platform=$${platform#@}; \
	  image=$(MOLECULE_IMAGE); [ -z "$$platform" ] || image=localhost/zerodowntime-sandbox:$$platform; \
	  report=$$scenario$${platform:+-$$platform}; \
	  echo "== molecule test -s $$scenario on $$image"; \
	  MOLECULE_IMAGE=$$image ZDT_REPORT=$$report molecule test -s $$scenario 2>&1 | tee build/molecule-$$report.log; \
	  if [ $${PIPESTATUS[0]} -ne 0 ]; then \
	    echo "== molecule scenario $$scenario on $$image failed; its failed tests:"; \
	    python3 tools/failed_tests.py build/junit-$$report.xml; \
	    exit 1; fi; \
	done

test-failures: setup  ## The failure matrix alone (molecule scenario `failures`, ~20 min)
	$(MAKE) molecule SCENARIOS=failures

test: setup lint checks molecule  ## Lint, ansible-test sanity and units with the ansible-core deploy smoke beside them, every molecule scenario

clean:  ## Remove the sandbox container and build outputs (keeps the image)
	-sandbox/sandbox.sh stop $(SANDBOX)
	rm -rf build
