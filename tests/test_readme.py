"""The README's quick start runs as written (smaller data and budget), under this pass's backend."""

import os
import re
import subprocess
import sys
from pathlib import Path

import keras

ROOT = Path(__file__).resolve().parents[1]


def quick_start() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Quick start") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_quick_start_trains_saves_reloads_and_exports(tmp_path):
    code = quick_start()
    assert "num_examples=60000" in code and "epochs=3" in code
    code = code.replace("num_examples=60000", "num_examples=3000").replace("epochs=3", "epochs=1")
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    environment = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    auc = float(re.search(r"test AUC ([0-9.]+)", result.stdout).group(1))
    assert 0.0 <= auc <= 1.0
    assert (tmp_path / "quickstart.keras").is_file()
    assert (tmp_path / "saved_models" / "quickstart" / "1" / "saved_model.pb").is_file()
