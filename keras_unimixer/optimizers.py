"""One optimizer for the embedding tables, another for the rest of the model.

Recommendation models usually train their sparse embedding tables with a different rule than
their dense layers (RankMixer: Adagrad for the tables, Adam for the dense part). Keras 3 has one
optimizer per model, so `SplitOptimizer` is that one optimizer: it routes each variable to one of
two ordinary Keras optimizers and exposes their state as its own, so it works in `fit` under
both backends (JAX's `stateless_apply` included), saves and reloads with the model, and follows
`ReduceLROnPlateau` (a new learning rate scales both optimizers by the same factor).
"""

from __future__ import annotations

import keras

from keras_unimixer.table_optimizer import RULES, RowSparseTableOptimizer

# `sgd`, `adagrad`, `rowwise_adagrad` and `adam` (lazy) are row-sparse (`RowSparseTableOptimizer`);
# `rmsprop` is Keras' dense RMSprop.
TABLE_OPTIMIZERS = ("sgd", "adagrad", "rowwise_adagrad", "adam", "rmsprop")
ROW_SPARSE_TABLE_OPTIMIZERS = RULES


def is_embedding_table(variable) -> bool:
    """True for the package's embedding tables (`<feature>_embedding`) and Keras `Embedding`s."""
    name = variable.path.rsplit("/", 1)[-1]
    return name.endswith("_embedding") or name == "embeddings"


@keras.saving.register_keras_serializable(package="keras_unimixer")
class SplitOptimizer(keras.optimizers.Optimizer):
    """`table_optimizer` for the embedding tables, `dense_optimizer` for every other variable.

    Args:
        dense_optimizer: a Keras optimizer (or its config / name) for the dense variables.
        table_optimizer: a Keras optimizer (or its config / name) for the embedding tables
            (`is_embedding_table`: variables named `*_embedding` or `embeddings`).
        name: the optimizer's name.

    Example:
    >>> import keras
    >>> optimizer = SplitOptimizer(keras.optimizers.Adam(1e-3), keras.optimizers.Adagrad(0.05))
    >>> model = keras.Sequential([keras.layers.Embedding(10, 4), keras.layers.Dense(1)])
    >>> model.compile(optimizer=optimizer, loss="mse")
    >>> _ = model.fit(keras.ops.ones((8, 3), "int32"), keras.ops.zeros((8, 3, 1)), verbose=0)
    """

    def __init__(self, dense_optimizer, table_optimizer, name="split_optimizer", **kwargs):
        kwargs.pop("learning_rate", None)
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.dense_optimizer = keras.optimizers.get(dense_optimizer)
        self.table_optimizer = keras.optimizers.get(table_optimizer)
        if self.dense_optimizer is self.table_optimizer:
            raise ValueError("`dense_optimizer` and `table_optimizer` must be two objects.")
        self._is_table = []

    def build(self, variables):
        super().build(variables)
        self._is_table = [is_embedding_table(variable) for variable in variables]
        dense, tables = self._split(variables)
        self.dense_optimizer.build(dense)
        self.table_optimizer.build(tables)

    def _split(self, values):
        dense = [v for v, table in zip(values, self._is_table, strict=True) if not table]
        tables = [v for v, table in zip(values, self._is_table, strict=True) if table]
        return dense, tables

    @property
    def variables(self):
        return self._variables[:] + self.dense_optimizer.variables + self.table_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        elif not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
        trainable_variables = list(trainable_variables)
        for optimizer, part_grads, part_variables in zip(
            (self.dense_optimizer, self.table_optimizer),
            self._split(grads),
            self._split(trainable_variables),
            strict=True,
        ):
            if part_variables:
                optimizer.apply(part_grads, part_variables)
        self._iterations.assign_add(1)

    @property
    def learning_rate(self):
        return self.dense_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        """Sets the dense learning rate; the tables' rate is scaled by the same factor."""
        old = float(keras.ops.convert_to_numpy(self.dense_optimizer.learning_rate))
        factor = float(value) / old if old else 1.0
        table_rate = float(keras.ops.convert_to_numpy(self.table_optimizer.learning_rate))
        self.dense_optimizer.learning_rate = value
        self.table_optimizer.learning_rate = table_rate * factor

    def get_config(self):
        return {
            "name": self.name,
            "dense_optimizer": keras.optimizers.serialize(self.dense_optimizer),
            "table_optimizer": keras.optimizers.serialize(self.table_optimizer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("dense_optimizer", "table_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key], custom_objects=custom_objects)
        return cls(**config)


def make_optimizer(learning_rate: float, table_optimizer: str | None = None,
                   table_learning_rate: float | None = None):  # fmt: skip
    """Adam at `learning_rate`; with `table_optimizer` (one of `TABLE_OPTIMIZERS`), a
    `SplitOptimizer` training the embedding tables with it at `table_learning_rate` (default:
    `learning_rate`): a row-sparse `RowSparseTableOptimizer` for `sgd`, `adagrad`,
    `rowwise_adagrad` and `adam` (lazy), Keras' RMSprop for `rmsprop`."""
    dense = keras.optimizers.Adam(learning_rate=learning_rate)
    if table_optimizer is None:
        return dense
    if table_optimizer not in TABLE_OPTIMIZERS:
        raise ValueError(
            f"`embedding_optimizer` must be one of {TABLE_OPTIMIZERS}, got {table_optimizer!r}."
        )
    rate = learning_rate if table_learning_rate is None else table_learning_rate
    if not rate > 0:
        raise ValueError(f"`embedding_learning_rate` must be > 0, got {rate!r}.")
    if table_optimizer in ROW_SPARSE_TABLE_OPTIMIZERS:
        tables = RowSparseTableOptimizer(table_optimizer, learning_rate=rate)
    else:
        tables = keras.optimizers.get(table_optimizer)
        tables.learning_rate = rate
    return SplitOptimizer(dense, tables)
