"""The `cluster` fixture: a one-node SLURM cluster on this machine for the session (see
slurm_cluster.py); skipped, with the reason, where SLURM or munge is missing or not root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import slurm_cluster  # noqa: E402


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    missing = slurm_cluster.missing_binaries()
    if missing:
        pytest.skip(f"SLURM/munge not installed (missing: {', '.join(missing)}); "
                    "`make test-cluster` installs them as root (apt: slurm-wlm munge)")
    if os.geteuid() != 0:
        pytest.skip("the test cluster runs its daemons and jobs as root (SlurmUser=root)")
    cluster = slurm_cluster.start(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        cluster.stop()
