"""Row-sparse optimizers for embedding tables: a step reads and writes only the rows it touched.

A batch looks up a few thousand rows of tables that may hold 10^8; a dense optimizer step reads
and writes every row and every slot. `RowSparseTableOptimizer` applies its rule to the rows of
the batch only (duplicate ids combined first), as TorchRec's and FBGEMM's fused table optimizers
do in PyTorch.

Where the step is row-sparse:
- TensorFlow: the gradient of a table lookup is a `tf.IndexedSlices`; the rows are gathered,
  updated and scattered back (`scatter_update`), slots included: the step's cost does not grow
  with the vocabulary.
- JAX: Keras' JAX trainer differentiates the whole table, so the gradient arrives dense; the
  rule is then applied to the rows whose gradient is not zero (the same result as the sparse
  path, except that a looked-up row whose gradient is exactly zero is left as it is), at the
  cost of a dense step.
"""

from __future__ import annotations

import keras
from keras import ops

RULES = ("sgd", "adagrad", "rowwise_adagrad", "adam")
_SLOTS = {
    "sgd": (),
    "adagrad": ("accumulator",),
    "rowwise_adagrad": ("row_accumulator",),
    "adam": ("momentum", "velocity"),
}
_DEFAULT_EPSILON = {"sgd": 0.0, "adagrad": 1e-7, "rowwise_adagrad": 1e-8, "adam": 1e-7}
_DEFAULT_ACCUMULATOR = {"adagrad": 0.1, "rowwise_adagrad": 0.0}


@keras.saving.register_keras_serializable(package="keras_unimixer")
class RowSparseTableOptimizer(keras.optimizers.Optimizer):
    """An optimizer for embedding tables that updates only the rows a batch looked up.

    Rules, for the combined gradient `g` of a row (duplicate ids in a batch summed first):
    - `"sgd"`: `w -= lr * g`.
    - `"adagrad"`: `a += g^2; w -= lr * g / sqrt(a + epsilon)`, the same numbers as
      `keras.optimizers.Adagrad` (an untouched row's accumulator does not change, so skipping
      it changes nothing).
    - `"rowwise_adagrad"`: one accumulator per row, `a += mean(g^2)`;
      `w -= lr * g / (sqrt(a) + epsilon)` (TorchRec's and FBGEMM's default for tables: 1/d of
      Adagrad's slot memory).
    - `"adam"`: lazy Adam. The moments of a touched row are updated as Keras' Adam updates them,
      with the bias correction of the global step; the moments of untouched rows are NOT decayed
      (unlike dense Adam), so the result differs from `keras.optimizers.Adam` as soon as a row
      skips a step.

    Args:
        rule: str. One of `"sgd"`, `"adagrad"`, `"rowwise_adagrad"`, `"adam"`. Defaults to
            `"rowwise_adagrad"`.
        learning_rate: float. The learning rate. Defaults to `0.01`.
        epsilon: float. The denominator's epsilon (unused by `"sgd"`). Defaults to `1e-7`
            (`1e-8` for `"rowwise_adagrad"`, as FBGEMM).
        initial_accumulator_value: float. Start value of the Adagrad accumulators. Defaults to
            `0.1` for `"adagrad"` (as Keras) and `0.0` for `"rowwise_adagrad"` (as FBGEMM).
        beta_1: float. Adam's first-moment decay. Defaults to `0.9`.
        beta_2: float. Adam's second-moment decay. Defaults to `0.999`.
        name: str. The optimizer's name. Defaults to `"row_sparse_table_optimizer"`.

    Example:
    >>> import keras
    >>> tables = RowSparseTableOptimizer("rowwise_adagrad", learning_rate=0.05)
    >>> optimizer = keras_unimixer.optimizers.SplitOptimizer(keras.optimizers.Adam(), tables)

    References:
        - Duchi et al., "Adaptive Subgradient Methods", JMLR 2011 (Adagrad).
        - Mudigere et al., "Software-Hardware Co-design for Fast and Scalable Training of Deep
          Learning Recommendation Models", arXiv:2104.05158 (row-wise Adagrad in FBGEMM).
    """

    def __init__(
        self,
        rule: str = "rowwise_adagrad",
        learning_rate: float = 0.01,
        epsilon: float | None = None,
        initial_accumulator_value: float | None = None,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        name: str = "row_sparse_table_optimizer",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if rule not in RULES:
            raise ValueError(f"`rule` must be one of {RULES}, got {rule!r}.")
        self.rule = rule
        self.epsilon = float(_DEFAULT_EPSILON[rule] if epsilon is None else epsilon)
        if rule != "sgd" and not self.epsilon > 0:
            raise ValueError(f"`epsilon` must be > 0, got {epsilon!r}.")
        default_accumulator = _DEFAULT_ACCUMULATOR.get(rule, 0.0)
        self.initial_accumulator_value = float(
            default_accumulator if initial_accumulator_value is None else initial_accumulator_value
        )
        if self.initial_accumulator_value < 0:
            raise ValueError(
                f"`initial_accumulator_value` must be >= 0, got {initial_accumulator_value!r}."
            )
        for name_, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"`{name_}` must be in [0, 1), got {beta!r}.")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._slots = []
        for variable in variables:
            if len(variable.shape) != 2:
                raise ValueError(
                    f"RowSparseTableOptimizer updates 2-D tables (rows, dim); {variable.path} "
                    f"has shape {variable.shape}."
                )
            slots = {}
            for slot in _SLOTS[self.rule]:
                shape = (variable.shape[0],) if slot == "row_accumulator" else variable.shape
                value = self.initial_accumulator_value if "accumulator" in slot else 0.0
                slots[slot] = self.add_variable(
                    shape=shape,
                    initializer=keras.initializers.Constant(value),
                    dtype=variable.dtype,
                    name=f"{variable.name}_{slot}",
                )
            self._slots.append(slots)

    def update_step(self, gradient, variable, learning_rate):
        slots = self._slots[self._get_variable_index(variable)]
        learning_rate = ops.cast(learning_rate, variable.dtype)
        touched = self._touched_rows(gradient)
        if touched is None:
            self._dense_update(gradient, variable, slots, learning_rate)
            return
        ids, grad_rows = touched
        rows = ops.take(variable, ids, axis=0)
        slot_rows = {name: ops.take(slot, ids, axis=0) for name, slot in slots.items()}
        new_rows, new_slot_rows = self._rule(rows, slot_rows, grad_rows, learning_rate)
        self._scatter_rows(variable, ids, new_rows)
        for name, slot in slots.items():
            self._scatter_rows(slot, ids, new_slot_rows[name])

    def _dense_update(self, gradient, variable, slots, learning_rate):
        """The rule on every row whose gradient is not zero; the other rows stay as they are."""
        touched = ops.any(ops.not_equal(gradient, 0), axis=-1)
        table = ops.convert_to_tensor(variable)
        values = {name: ops.convert_to_tensor(slot) for name, slot in slots.items()}
        new_rows, new_slots = self._rule(table, values, gradient, learning_rate)
        self.assign(variable, ops.where(touched[:, None], new_rows, table))
        for name, slot in slots.items():
            mask = touched if len(slot.shape) == 1 else touched[:, None]
            self.assign(slot, ops.where(mask, new_slots[name], values[name]))

    def _rule(self, rows, slot_rows, grad, learning_rate):
        if self.rule == "sgd":
            return rows - learning_rate * grad, {}
        if self.rule == "adagrad":
            accumulator = slot_rows["accumulator"] + ops.square(grad)
            step = learning_rate * grad / ops.sqrt(accumulator + self.epsilon)
            return rows - step, {"accumulator": accumulator}
        if self.rule == "rowwise_adagrad":
            accumulator = slot_rows["row_accumulator"] + ops.mean(ops.square(grad), axis=-1)
            scale = learning_rate / (ops.sqrt(accumulator) + self.epsilon)
            return rows - grad * scale[:, None], {"row_accumulator": accumulator}
        step = ops.cast(self.iterations + 1, rows.dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, rows.dtype), step)
        beta_2_power = ops.power(ops.cast(self.beta_2, rows.dtype), step)
        alpha = learning_rate * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        momentum = slot_rows["momentum"] + (grad - slot_rows["momentum"]) * (1 - self.beta_1)
        velocity = slot_rows["velocity"] + (ops.square(grad) - slot_rows["velocity"]) * (
            1 - self.beta_2
        )
        new_rows = rows - alpha * momentum / (ops.sqrt(velocity) + self.epsilon)
        return new_rows, {"momentum": momentum, "velocity": velocity}

    def _touched_rows(self, gradient):
        """`(ids, gradient rows)` of the distinct rows a TensorFlow `IndexedSlices` gradient
        touches (duplicate ids summed), or None for a dense gradient."""
        if keras.backend.backend() != "tensorflow":
            return None
        import tensorflow as tf

        if not isinstance(gradient, tf.IndexedSlices):
            return None
        ids, positions = tf.unique(gradient.indices)
        rows = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(ids)[0])
        return ids, rows

    def _scatter_rows(self, variable, ids, rows) -> None:
        """Write `rows` into `variable` at `ids` in place (Keras' TensorFlow optimizer assigns
        an `IndexedSlices` with `scatter_update`)."""
        import tensorflow as tf

        self.assign(variable, tf.IndexedSlices(ops.cast(rows, variable.dtype), ids))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rule": self.rule,
                "epsilon": self.epsilon,
                "initial_accumulator_value": self.initial_accumulator_value,
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
            }
        )
        return config
