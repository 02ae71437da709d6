"""The user guide and the API reference (mkdocs + mkdocstrings, from the docstrings) build with
warnings as errors."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="needs the docs extra")
def test_the_docs_and_api_reference_build_strictly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reference = (tmp_path / "api" / "layers" / "index.html").read_text()
    for name in ("UniMixing", "UniMixingLite", "UniMixerEncoder", "register_mixer"):
        assert f'id="keras_unimixer.layers.{name}"' in reference or (
            f'id="keras_unimixer.layers.mixing.{name}"' in reference
        ), name
    models = (tmp_path / "api" / "models" / "index.html").read_text()
    assert 'id="keras_unimixer.models.RankingModel"' in models
    assert "Defaults to" in models  # the arguments' text, rendered from the docstrings
