"""One optimizer for the embedding tables, another for the rest of the model.

Recommendation models usually train their sparse embedding tables with a different rule than
their dense layers (RankMixer: Adagrad for the tables, Adam for the dense part). Keras 3 has one
optimizer per model, so `SplitOptimizer` is that one optimizer: it routes each variable to one of
two ordinary Keras optimizers and exposes their state as its own, so it works in `fit` under
both backends (JAX's `stateless_apply` included), saves and reloads with the model, and follows
`ReduceLROnPlateau` (a new learning rate scales both optimizers by the same factor).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras

from keras_unimixer.table_optimizer import RULES, RowSparseTableOptimizer
from keras_unimixer.utils.types import Tensor

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; annotations only

# `sgd`, `adagrad`, `rowwise_adagrad` and `adam` (lazy) are row-sparse (`RowSparseTableOptimizer`);
# `rmsprop` is Keras' dense RMSprop.
TABLE_OPTIMIZERS = ("sgd", "adagrad", "rowwise_adagrad", "adam", "rmsprop")
ROW_SPARSE_TABLE_OPTIMIZERS = RULES


def is_embedding_table(variable: keras.Variable) -> bool:
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
        global_clipnorm: float or `None`. Clip the gradients of all variables, both groups
            together, to this global norm first. Defaults to `None`.

    Example:
    >>> import keras
    >>> optimizer = SplitOptimizer(keras.optimizers.Adam(1e-3), keras.optimizers.Adagrad(0.05))
    >>> model = keras.Sequential([keras.layers.Embedding(10, 4), keras.layers.Dense(1)])
    >>> model.compile(optimizer=optimizer, loss="mse")
    >>> _ = model.fit(keras.ops.ones((8, 3), "int32"), keras.ops.zeros((8, 3, 1)), verbose=0)
    """

    def __init__(
        self,
        dense_optimizer: keras.optimizers.Optimizer,
        table_optimizer: keras.optimizers.Optimizer,
        name: str = "split_optimizer",
        global_clipnorm: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("learning_rate", None)
        super().__init__(learning_rate=0.0, name=name, global_clipnorm=global_clipnorm, **kwargs)
        self.dense_optimizer = keras.optimizers.get(dense_optimizer)
        self.table_optimizer = keras.optimizers.get(table_optimizer)
        if self.dense_optimizer is self.table_optimizer:
            raise ValueError("`dense_optimizer` and `table_optimizer` must be two objects.")
        self._is_table = []

    def build(self, variables: Sequence[keras.Variable]) -> None:
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
    def variables(self) -> list[keras.Variable]:
        return self._variables[:] + self.dense_optimizer.variables + self.table_optimizer.variables

    def apply(
        self, grads: Sequence[Tensor], trainable_variables: Sequence[keras.Variable] | None = None
    ) -> None:
        grads = list(grads)
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        elif not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
        trainable_variables = list(trainable_variables)
        grads = self._clip_gradients(grads)
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
    def learning_rate(self) -> keras.Variable:
        return self.dense_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        """Sets the dense learning rate; the tables' rate is scaled by the same factor."""
        old = float(keras.ops.convert_to_numpy(self.dense_optimizer.learning_rate))
        factor = float(value) / old if old else 1.0
        table_rate = float(keras.ops.convert_to_numpy(self.table_optimizer.learning_rate))
        self.dense_optimizer.learning_rate = value
        self.table_optimizer.learning_rate = table_rate * factor

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dense_optimizer": keras.optimizers.serialize(self.dense_optimizer),
            "table_optimizer": keras.optimizers.serialize(self.table_optimizer),
            "global_clipnorm": self.global_clipnorm,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Self:
        config = dict(config)
        for key in ("dense_optimizer", "table_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key], custom_objects=custom_objects)
        return cls(**config)


def make_optimizer(
    learning_rate: float,
    table_optimizer: str | None = None,
    table_learning_rate: float | None = None,
    weight_decay: float = 0.0,
    table_weight_decay: float | None = None,
    clip_norm: float | None = None,
    table_l2: float = 0.0,
) -> keras.optimizers.Optimizer:
    """The training optimizer of the package's runs.

    Adam at `learning_rate` (AdamW, Adam with decoupled weight decay, where `weight_decay` > 0).
    With `table_optimizer` (one of `TABLE_OPTIMIZERS`), a `SplitOptimizer` training the embedding
    tables with it at `table_learning_rate` (default: `learning_rate`): a row-sparse
    `RowSparseTableOptimizer` for `sgd`, `adagrad`, `rowwise_adagrad` and `adam` (lazy), Keras'
    RMSprop for `rmsprop`. The tables decay by `table_weight_decay` (`None`: `weight_decay`);
    where that differs from the dense decay and there is no `table_optimizer`, the tables get
    their own AdamW (e.g. 0.01 for the tables and 5e-5 for the rest). A row-sparse
    `table_optimizer` refuses a table decay. With `clip_norm`, all gradients together are clipped
    to that global norm first. `table_l2` is the L2 on the rows each step looks up
    (`RowSparseTableOptimizer(row_l2=)`), for a row-sparse `table_optimizer` only: a dense table
    takes its L2 from the model (`embedding_l2`, over the whole table).

    Args:
        learning_rate: float. Adam's learning rate.
        table_optimizer: str or `None`. The embedding tables' optimizer. Defaults to `None`.
        table_learning_rate: float or `None`. Its learning rate. Defaults to `None`.
        weight_decay: float. Decoupled weight decay of the dense variables. Defaults to `0.0`.
        table_weight_decay: float or `None`. Decoupled weight decay of the tables (`None`:
            `weight_decay`). Defaults to `None`.
        clip_norm: float or `None`. Global gradient-norm clipping. Defaults to `None`.
        table_l2: float. L2 on the looked-up rows, with a row-sparse `table_optimizer`. Defaults
            to `0.0`.
    """
    for name, value in (
        ("weight_decay", weight_decay),
        ("embedding_weight_decay", table_weight_decay),
    ):
        if value is not None and not value >= 0:
            raise ValueError(f"`{name}` must be >= 0, got {value!r}.")
    if not table_l2 >= 0:
        raise ValueError(f"`embedding_l2` must be >= 0, got {table_l2!r}.")
    if table_l2 and table_optimizer not in ROW_SPARSE_TABLE_OPTIMIZERS:
        raise ValueError(
            f"`table_l2`={table_l2} is the L2 on the rows a row-sparse table optimizer "
            f"({list(ROW_SPARSE_TABLE_OPTIMIZERS)}) updates; got table_optimizer="
            f"{table_optimizer!r}. Dense tables take their L2 from the model (`embedding_l2`)."
        )
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"`gradient_clip_norm` must be > 0, got {clip_norm!r}.")
    if table_weight_decay is None:
        table_weight_decay = weight_decay
    if table_optimizer is None and table_weight_decay == weight_decay:
        return _adam(learning_rate, weight_decay, clip_norm)
    dense = _adam(learning_rate, weight_decay)
    if table_optimizer is None:
        tables = _adam(learning_rate, table_weight_decay)
        return SplitOptimizer(dense, tables, global_clipnorm=clip_norm)
    if table_optimizer not in TABLE_OPTIMIZERS:
        raise ValueError(
            f"`embedding_optimizer` must be one of {TABLE_OPTIMIZERS}, got {table_optimizer!r}."
        )
    rate = learning_rate if table_learning_rate is None else table_learning_rate
    if not rate > 0:
        raise ValueError(f"`embedding_learning_rate` must be > 0, got {rate!r}.")
    if table_optimizer in ROW_SPARSE_TABLE_OPTIMIZERS:
        if table_weight_decay or clip_norm is not None:
            raise ValueError(
                f"`embedding_optimizer`={table_optimizer!r} updates only the rows a batch looked "
                "up; a weight decay of the tables or a global gradient-norm clip would touch (or "
                "need) every row. Pass --embedding-weight-decay 0 and no --gradient-clip-norm, "
                "or a dense embedding optimizer (rmsprop, or none)."
            )
        tables = RowSparseTableOptimizer(table_optimizer, learning_rate=rate, row_l2=table_l2)
    else:
        tables = keras.optimizers.get(
            {"class_name": table_optimizer, "config": {"weight_decay": table_weight_decay or None}}
        )
        tables.learning_rate = rate
    return SplitOptimizer(dense, tables, global_clipnorm=clip_norm)


def _adam(learning_rate: float, weight_decay: float, clip_norm: float | None = None):
    if weight_decay:
        return keras.optimizers.AdamW(
            learning_rate=learning_rate, weight_decay=weight_decay, global_clipnorm=clip_norm
        )
    return keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=clip_norm)
