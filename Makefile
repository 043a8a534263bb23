# cloudops.leveller: the user interface of the repository.
#   make demo    install everything, start the local cloud, unbalance it, run playbooks/balance.yml
#   make test    install everything and run every test layer (sanity, units, lint, docs, ee, integration)
#   make bench   planner benchmarks (table + JSON under benchmarks/results/)
#   make ee      the AWX execution environment's build context (tests/output/ee/context), for ansible-builder build
#   make replay  PlanetLab days replayed beside CloudSim's figures [DAY=<file.csv.gz>] [RULES=cloudsim|real|both]
#   make cloud-up | cloud-down | cloud-reset | cloud-status   the local cloud on its own
SHELL := /bin/bash
LEVELLER_HOME ?= $(HOME)/.cache/cloudops-leveller
VENV ?= $(LEVELLER_HOME)/venv
PY := $(VENV)/bin/python
CLOUD := bash tests/integration/cloud/cloud.sh
COLLECTIONS := $(LEVELLER_HOME)/collections
export LEVELLER_HOME
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(VENV)/bin:$(PATH)

.PHONY: help deps link demo test sanity units lint docs-lint ee integration bench replay \
        cloud-install cloud-up cloud-down cloud-reset cloud-status libvirt-install clean

help:
	@sed -n '2,7p' Makefile

deps:
	@bash scripts/install-tools.sh
	@bash scripts/ansible-test-offline.sh $(PY) >/dev/null
	@$(MAKE) --no-print-directory link

# Ansible and pytest find the collection through this symlink (repo root = collection root).
link:
	@mkdir -p $(COLLECTIONS)/ansible_collections/cloudops
	@ln -sfn $(CURDIR) $(COLLECTIONS)/ansible_collections/cloudops/leveller

cloud-install: deps
	@$(CLOUD) install

cloud-up: cloud-install
	@$(CLOUD) up

cloud-down:
	@$(CLOUD) down

cloud-reset: cloud-install
	@$(CLOUD) reset

cloud-status:
	@$(CLOUD) status

demo: cloud-up
	@bash scripts/demo.sh

# The two QEMU hosts of the plain-libvirt tests (started by the libvirt_execution target).
libvirt-install: deps
	@bash tests/integration/libvirt/libvirt.sh install

test: deps cloud-install libvirt-install
	@bash scripts/test-all.sh all

integration: libvirt-install

sanity units lint docs-lint integration: deps
	@INTEGRATION_TARGETS="$(TARGET)" bash scripts/test-all.sh $@


# The execution environment's build context: collection tarball + extensions/ee/execution-environment.yml
# -> tests/output/ee/context (ansible-builder create; no container runtime needed).
ee: deps
	@bash scripts/ee-context.sh

bench: deps
	@bash benchmarks/run.sh $(BENCH_ARGS)

# The PlanetLab replay (benchmarks/replay/): every day file in PLANETLAB_DIR, or DAY=<file>;
# RULES=cloudsim (default), real or both; POLICIES=dvfs,thr-mmt-0.8,lr-mmt-1.2,leveller-frontier (default).
# Standard library only, so it needs no venv; JSON and a picture per day under benchmarks/results/replay-*.
PLANETLAB_DIR ?= $(firstword $(wildcard $(abspath $(CURDIR)/../shared/data/planetlab)) $(LEVELLER_HOME)/data/planetlab)
RULES ?= cloudsim
REPLAY_PY := $(if $(wildcard $(PY)),$(PY),python3)
replay:
	@PLANETLAB_DIR="$(PLANETLAB_DIR)" $(REPLAY_PY) benchmarks/replay/run_replay.py --rules $(RULES) \
	  $(if $(DAY),--day $(DAY)) $(if $(POLICIES),--policies $(POLICIES)) --check

clean:
	rm -rf tests/output reports benchmarks/results/*.json benchmarks/results/*.svg
