"""Row lookups in embedding tables that read only the rows looked up."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
from keras import ops

from keras_unimixer.utils.types import Tensor


def gather_rows(table: Tensor, ids: Tensor) -> Tensor:
    """`ops.take(table, ids, axis=0)`, reading only the rows `ids` of a table variable.

    Under TensorFlow, `ops.take` first converts a variable to a tensor, which reads (and, in a
    training step that later updates the table, copies) the whole table at every step. Here the
    rows are gathered from the variable itself (`ResourceGather`), whose gradient is the
    `IndexedSlices` of the rows: a step then costs the same for a 10^4- or a 10^8-row table.
    Keras' TensorFlow optimizer hands `update_step` the `tf.Variable` inside a Keras variable;
    that one is read row by row too (`ops.take` would read its shape through the whole table,
    and a table read in full is copied by the step's scatter whenever XLA is off). Elsewhere
    (JAX, or a plain tensor) this is `ops.take`.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        variable = table.value if isinstance(table, keras.Variable) else table
        if isinstance(variable, tf.Variable):
            return tf.gather(variable, ids)
    return ops.take(table, ids, axis=0)


# Rows gathered by a row-sparse training step (`keras_unimixer.table_optimizer`), keyed by
# (tokenizer id, feature name): `(rows, positions)`, the distinct rows of the batch and, shaped
# like the feature's ids, each id's position among them. Set only while that step is traced.
_GATHERED: dict = {}


@contextlib.contextmanager
def gathered_rows(mapping: dict) -> Iterator[None]:
    """Within this context, `lookup(layer, name, ...)` reads `mapping[(id(layer), name)]`."""
    previous = dict(_GATHERED)
    _GATHERED.update(mapping)
    try:
        yield
    finally:
        _GATHERED.clear()
        _GATHERED.update(previous)


def lookup(layer: keras.Layer, name: str, table: Tensor, ids: Tensor) -> Tensor:
    """The rows of `table` at `ids`: from the gathered rows of a row-sparse step where there are
    some for `(layer, name)` (the gradient then flows to those rows, not to the table), else
    `gather_rows(table, ids)`."""
    gathered = _GATHERED.get((id(layer), name))
    if gathered is None:
        return gather_rows(table, ids)
    rows, positions = gathered
    return ops.take(rows, ops.reshape(positions, ops.shape(ids)), axis=0)
