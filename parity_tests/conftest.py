"""Shared fixtures: the device each framework runs on.

JAX uses its default backend; torch uses CUDA when it is available, so the
same suite runs unchanged on a GPU machine.
"""

import jax
import pytest
import torch

# data/upstream_configs/ holds upstream config files (.py) kept as test data: never import them.
collect_ignore_glob = ["data/*"]


@pytest.fixture(scope="session")
def torch_device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pytest_report_header(config):
    return (f"jax backend: {jax.default_backend()}; torch device: "
            f"{'cuda' if torch.cuda.is_available() else 'cpu'}")
