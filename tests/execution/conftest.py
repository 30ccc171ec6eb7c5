"""Fixtures for the Dask executor tests: a real ``distributed.LocalCluster`` per module (two
worker processes on 127.0.0.1), task functions pickled by value (as notebook functions are), and
SQLite runner URLs. Tests using the cluster are grouped on one xdist worker (``loadgroup``)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

from tests.execution import dask_tasks
from tests.notebook.conftest import cell, ip  # noqa: F401  (the IPython shell fixtures)

# the Dask workers need not import the test package: like a notebook's functions, these travel
# by value
cloudpickle.register_pickle_by_value(dask_tasks)


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """Two single-thread worker processes on 127.0.0.1, for the whole module."""
    from distributed import LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        # the scheduler's HTTP endpoint falls back to a free port when 8787 is taken
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        with LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as lc:
            yield lc


@pytest.fixture
def address(cluster: object) -> str:
    """The module cluster's scheduler address, with both workers up."""
    from distributed import Client

    assert hasattr(cluster, "scheduler_address")
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
    return str(cluster.scheduler_address)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file URL."""
    return f"sqlite:///{tmp_path / 'runner.db'}"
