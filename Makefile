# cnn-jax: `make train` trains the default experiment; `make test` runs the fast test suite.
# Both install everything first (uv + the locked environment with every extra but the
# accelerator ones; Debian's Fashion-MNIST when root). `make setup ACCEL=cuda12` (or tpu) adds
# JAX for an NVIDIA GPU (or a TPU); later targets keep it. `make gpu-check` checks that install.
UV ?= uv
ARGS ?=
ACCEL ?=

.PHONY: setup train test test-all test-cluster lint gpu-check

setup:
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install -q uv
	@[ -d /usr/share/datasets/fashion-mnist ] || [ "$$(id -u)" != 0 ] || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null)
	$(UV) sync --frozen --quiet --inexact --extra all $(if $(ACCEL),--extra $(ACCEL))

train: setup
	$(UV) run --frozen python -m experiments.train $(ARGS)

test: setup
	$(UV) run --frozen pytest

test-all: setup
	$(UV) run --frozen pytest -m "slow or not slow"

# The tests marked `cluster`: they start the servers they need themselves (a PostgreSQL server; a
# one-node SLURM cluster: munged, slurmctld, slurmd) with every file in a temp dir, and stop them at
# the end; as root, the Debian packages are installed first when missing. One process: the SLURM
# cluster is shared by its tests, and the machine's cores by their jobs.
CLUSTER_PACKAGES ?= postgresql slurm-wlm munge
test-cluster: setup
	@[ "$$(id -u)" != 0 ] || (ls /usr/lib/postgresql/*/bin/initdb && command -v slurmctld && \
	  command -v munged) >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(CLUSTER_PACKAGES) >/dev/null)
	$(UV) run --frozen pytest -m cluster -n 0

lint: setup
	$(UV) run --frozen ruff check .

gpu-check: setup
	@$(UV) run --frozen python benchmarks/gpu_check.py
