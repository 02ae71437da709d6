import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    shutil.which("ruff") is None and sys.prefix == sys.base_prefix, reason="no ruff"
)
def test_ruff_lint_is_clean():
    ruff = Path(sys.prefix) / "bin" / "ruff"
    command = [
        str(ruff) if ruff.exists() else "ruff",
        "check",
        "keras_unimixer",
        "tests",
        "benchmarks",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
