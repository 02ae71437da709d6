"""Every docstring example of the package runs and prints what it says (`doctest`)."""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import keras_unimixer

pytestmark = pytest.mark.backend_independent  # once, in the JAX pass: shapes print per backend

# Modules whose examples need an extra (TensorFlow-only export, Keras Tuner, TFRS) or are the
# command line's.
LEFT_OUT = (
    "keras_unimixer.export",
    "keras_unimixer.experiments.tuning",
    "keras_unimixer.tfrs",
    "keras_unimixer.__main__",
    "keras_unimixer._startup",
)


def package_modules() -> list[str]:
    found = pkgutil.walk_packages(keras_unimixer.__path__, "keras_unimixer.")
    names = [info.name for info in found]
    return sorted(name for name in names if not name.startswith(LEFT_OUT))


def test_every_docstring_example_runs():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs = {"keras": keras, "np": np, "keras_unimixer": keras_unimixer}
    attempted, failures = 0, []
    for name in package_modules():
        module = importlib.import_module(name)
        for test in finder.find(module, name, extraglobs=globs):
            result = runner.run(test, out=lambda text: failures.append(text))
            attempted += result.attempted
    assert not failures, "".join(failures)[-4000:]
    assert attempted >= 80  # the examples of layers, models, tasks, datasets, optimizers, ...


@pytest.mark.parametrize(
    "name",
    ["keras_unimixer.layers.mixing.unimixing", "keras_unimixer.layers.mixing.unimixing_lite"],
)
def test_the_examples_are_found(name):
    tests = doctest.DocTestFinder().find(importlib.import_module(name), name)
    assert sum(len(test.examples) for test in tests) > 0
