"""Every public layer documents each constructor argument in keras-rs's form (`name: type. What
it is. Defaults to X.`), its call arguments, a runnable example and its references."""

import inspect
import re

import pytest

from keras_unimixer import layers

pytestmark = pytest.mark.backend_independent
LAYERS = [getattr(layers, name) for name in layers.__all__ if name != "MixingLayer"]


def _arguments_section(doc: str) -> str:
    return doc.split("Args:", 1)[1].split("Call arguments:", 1)[0]


@pytest.mark.parametrize("layer_class", LAYERS, ids=lambda c: c.__name__)
def test_every_constructor_argument_is_documented_with_its_default(layer_class):
    doc = inspect.getdoc(layer_class)
    for section in ("Args:", "Call arguments:", "Example:", "References:"):
        assert section in doc, f"{layer_class.__name__} has no {section}"
    arguments = _arguments_section(doc)
    entries = dict(
        re.findall(
            r"^    (\w+): (.*?)(?=^    \w+: |^    \*\*kwargs|\Z)", arguments, flags=re.M | re.S
        )
    )
    for name, parameter in inspect.signature(layer_class.__init__).parameters.items():
        if name == "self" or parameter.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        assert name in entries, f"{layer_class.__name__}: `{name}` is not documented"
        if parameter.default is not inspect.Parameter.empty:
            text = " ".join(entries[name].split())
            assert "Defaults to" in text, f"{layer_class.__name__}.{name}: no default"
    assert "arxiv.org/abs/" in doc.split("References:", 1)[1]
