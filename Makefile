# zerodowntime.web — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV       := $(CURDIR)/.venv
BIN        := $(VENV)/bin
IMAGE      ?= localhost/zerodowntime-sandbox:debian12
SANDBOX    ?= zdt-sandbox
APT_PKGS   := podman runc debootstrap slirp4netns uidmap git openssh-client

export PATH             := $(BIN):$(PATH)
export CONTAINERS_CONF  ?= $(CURDIR)/sandbox/containers.conf
export ANSIBLE_CONFIG   := $(CURDIR)/ansible.cfg
# collections/ links this repository in as zerodowntime.web (its modules are in plugins/).
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/collections:$(HOME)/.ansible/collections:/usr/share/ansible/collections
export SANDBOX_IMAGE    := $(IMAGE)
export MOLECULE_IMAGE   ?= $(IMAGE)
export SANDBOX_KEY      ?= $(HOME)/.ssh/zerodowntime-sandbox_ed25519

.PHONY: help setup apt venv image demo bench test test-failures lint units molecule clean

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
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

image: apt  ## Build the sandbox image offline (debootstrap + podman import), if missing
	@if [ "$(MOLECULE_IMAGE)" = "$(IMAGE)" ]; then sandbox/build-image.sh; fi
	@sandbox/sandbox.sh key >/dev/null

demo: setup  ## Deploy webxample v1, then v2 under load, into a local sandbox; print the numbers
	tools/demo.sh

bench: setup  ## Benchmark: restart vs hup vs zerodowntime deploys, boot delays 0/10/30 s (~25 min)
	python tools/bench.py

lint: venv  ## ansible-lint (production profile), ruff, role docs and specs in sync
	ansible-lint
	ruff check examples tools molecule plugins tests
	python tools/role_docs.py --check

units: venv  ## Unit tests of the module_utils and filters (naming, ownership, lock, inputs)
	python -m pytest -q -p no:cacheprovider tests/unit

molecule: setup  ## The core scenario, a real Django project beside another app, the failure matrix
	cd $(CURDIR) && molecule test -s default
	cd $(CURDIR) && molecule test -s realapp
	cd $(CURDIR) && molecule test -s failures

test-failures: setup  ## The failure matrix alone (molecule scenario `failures`, ~20 min)
	cd $(CURDIR) && molecule test -s failures

test: setup lint units molecule  ## Lint, unit tests, then every molecule scenario

clean:  ## Remove the sandbox container and build outputs (keeps the image)
	-sandbox/sandbox.sh stop $(SANDBOX)
	rm -rf build
