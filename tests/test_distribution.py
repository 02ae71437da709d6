import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("mixer", ["unimixer_lite"])
def test_data_parallel_on_two_virtual_devices_matches_one_device(mixer):
    """JAX DataParallel or TF MirroredStrategy (per this pass's backend) over 2 CPU devices."""
    environment = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "distribution_check.py"), mixer],
        capture_output=True, text=True, env=environment, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    assert losses["devices"] == 2
    assert len(losses["single"]) == len(losses["parallel"]) == 2
    np.testing.assert_allclose(losses["parallel"], losses["single"], rtol=1e-4)
    assert losses["single"][1] < losses["single"][0]  # it trained
