"""Run by scripts/check_extras.sh inside a fresh venv holding one backend extra."""

import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

backend = sys.argv[1]
if backend == "jax":
    assert importlib.util.find_spec("tensorflow") is None, "TensorFlow came with .[jax]"

import keras  # noqa: E402

from keras_unimixer import datasets, export, models  # noqa: E402

assert keras.backend.backend() == backend
data = datasets.make_synthetic(num_examples=2000)
model = models.RankingModel(data.features, mixer="unimixer_lite", num_layers=1)
models.compile_ranking(model, ["click"])
features, labels = data.arrays("train")
history = model.fit(features, labels["click"][:, None], batch_size=256, epochs=2, verbose=0)
assert history.history["loss"][-1] < history.history["loss"][0], history.history["loss"]
test_features, _ = data.arrays("test")
scores = model.predict(test_features, verbose=0)[:, 0]
folder = Path(tempfile.mkdtemp())
model.save(folder / "model.keras")
reloaded = keras.saving.load_model(folder / "model.keras")
np.testing.assert_allclose(reloaded.predict(test_features, verbose=0)[:, 0], scores, atol=1e-6)
print(f"{backend}: trained (loss {history.history['loss']}), saved and reloaded exactly")
if backend == "tensorflow":
    spec = export.serving_spec(data)
    version = export.export_savedmodel(model, spec, str(folder / "saved_model"))
    served = export.ServingFunction(version)(export.raw_from_encoded(spec, test_features))
    np.testing.assert_allclose(np.asarray(served["logit"]).reshape(-1), scores, atol=1e-4)
    print("tensorflow: exported a SavedModel that serves the same logits")
