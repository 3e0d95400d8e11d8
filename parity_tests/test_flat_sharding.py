"""The flat layout's buffers split over 8 (fake CPU) devices, ZeRO-style, equal one device.

``flat_sharding_worker.py`` runs in a subprocess (8 devices must be set before jax is
imported): every ``Flat`` buffer (params, gradients, slots, the accumulation buffer) split
by rows, so each device owns a contiguous range of rows and each tensor's rows may span
devices; the per-tensor LARS norms and the clip total are global (row sums per device,
then the segment sums across devices). By default SimCLR (LARS with excluded tensors) and
the fp16 recipe (L2 clip, accumulation, loss scaling, AdamW) run;
``OSS_SHARDING_RECIPES=all`` or a comma list runs others.
"""

import os

import pytest
from test_sharding import selected, subprocess_env  # noqa: F401  (the same recipe choice)

HERE = os.path.dirname(os.path.abspath(__file__))
TOLERANCE = 6e-7  # the multi-device tolerance of docs/multi-device.md


def test_flat_buffers_split_over_8_devices_equal_one_device():
    import json
    import subprocess
    import sys

    names = selected()
    proc = subprocess.run([sys.executable, os.path.join(HERE, "flat_sharding_worker.py"),
                           *names], capture_output=True, text=True, timeout=3000,
                          env=subprocess_env(), cwd=os.path.dirname(HERE))
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out) == set(names)
    for name, r in out.items():
        assert r["devices"] == 8
        assert r["params"] <= TOLERANCE, (name, r)
        assert r["opt_state"] <= TOLERANCE, (name, r)
        assert r["grad_norm"] <= TOLERANCE, (name, r)
        assert r["moved"] == [], (name, r)


if __name__ == "__main__":
    pytest.main([__file__])
