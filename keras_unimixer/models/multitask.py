"""Multi-task heads over a shared encoding: independent towers, MMoE and PLE (CGC).

- MMoE (Ma et al., KDD 2018): `E` shared expert MLPs; task `t` mixes them with its own softmax
  gate `g_t(x)` and a tower reads the mixture.
- PLE (Tang et al., RecSys 2020), one extraction layer (CGC): each task has its own experts and
  shares `num_shared_experts` with the others; task `t`'s gate mixes its own and the shared ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

from keras_unimixer.utils.types import Shape, Tensor
from keras_unimixer.utils.validation import check_choice, check_positive_int

HEADS = ("independent", "mmoe", "ple")


@keras.saving.register_keras_serializable(package="keras_unimixer")
class MixtureOfExperts(keras.layers.Layer):
    """Gated expert mixtures, one per task (MMoE, or PLE's CGC layer).

    Args:
        tasks: task names; the call returns one mixture per task.
        num_experts: shared experts (MMoE), or experts per task (PLE).
        expert_units: hidden sizes of each expert MLP (ReLU).
        kind: `"mmoe"` or `"ple"`.
        num_shared_experts: PLE's shared experts.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, width)` shared encoding.

    Returns:
        dict task -> `(batch, expert_units[-1])`.

    Example:
    >>> moe = keras_unimixer.models.MixtureOfExperts(["a", "b"], num_experts=3,
    ...                                              expert_units=(8,))
    >>> {k: v.shape for k, v in moe(keras.random.normal((2, 5))).items()}
    {'a': (2, 8), 'b': (2, 8)}
    """

    def __init__(
        self,
        tasks: str | Sequence[str],
        num_experts: int = 4,
        expert_units: Sequence[int] = (64,),
        kind: str = "mmoe",
        num_shared_experts: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tasks = list(tasks)
        self.num_experts = check_positive_int("num_experts", num_experts)
        self.expert_units = [check_positive_int("expert_units", u) for u in expert_units]
        if not self.expert_units:
            raise ValueError("`expert_units` needs at least one layer.")
        self.kind = check_choice("kind", kind, ("mmoe", "ple"))
        self.num_shared_experts = check_positive_int("num_shared_experts", num_shared_experts)

    def _expert_names(self, task=None):
        if self.kind == "mmoe":
            return [f"expert_{i}" for i in range(self.num_experts)]
        shared = [f"shared_expert_{i}" for i in range(self.num_shared_experts)]
        own = [f"{task}_expert_{i}" for i in range(self.num_experts)] if task else []
        return own + shared

    def build(self, input_shape: Shape) -> None:
        width = input_shape[-1]
        names = set()
        for task in self.tasks:
            names.update(self._expert_names(task))
        self.experts = {}
        for name in sorted(names):
            layers, size = [], width
            for index, units in enumerate(self.expert_units):
                dense = keras.layers.Dense(
                    units, activation="relu", name=f"{name}_{index}", dtype=self.dtype_policy
                )
                dense.build((None, size))
                layers.append(dense)
                size = units
            self.experts[name] = layers
        self.gates = {}
        for task in self.tasks:
            gate = keras.layers.Dense(
                len(self._expert_names(task)), name=f"{task}_gate", dtype=self.dtype_policy
            )
            gate.build((None, width))
            self.gates[task] = gate

    def call(self, inputs: Tensor) -> dict[str, Tensor]:
        outputs = {}
        for name, layers in self.experts.items():
            hidden = inputs
            for layer in layers:
                hidden = layer(hidden)
            outputs[name] = hidden
        mixtures = {}
        for task in self.tasks:
            stacked = ops.stack([outputs[n] for n in self._expert_names(task)], axis=1)
            weights = ops.softmax(self.gates[task](inputs), axis=-1)
            mixtures[task] = ops.sum(stacked * weights[:, :, None], axis=1)
        return mixtures

    def compute_output_shape(self, input_shape: Shape) -> dict[str, Shape]:
        return {task: (input_shape[0], self.expert_units[-1]) for task in self.tasks}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "tasks": self.tasks,
                "num_experts": self.num_experts,
                "expert_units": self.expert_units,
                "kind": self.kind,
                "num_shared_experts": self.num_shared_experts,
            }
        )
        return config


def multitask_heads(
    shared: Tensor,
    tasks: Sequence[str],
    heads: str,
    num_experts: int,
    expert_units: Sequence[int],
    hidden_units: Sequence[int],
    mlp: Callable[[Tensor], Tensor],
) -> dict:
    """Per-task outputs (one logit each) over the shared encoding.

    `"independent"`: one MLP (`hidden_units`) shared by the tasks, then a linear head per task
    (the package's default); `"mmoe"` / `"ple"`: `MixtureOfExperts`, then a linear head per task.
    """
    check_choice("heads", heads, HEADS)
    if heads == "independent":
        hidden = mlp(shared)
        per_task = {task: hidden for task in tasks}
    else:
        per_task = MixtureOfExperts(
            tasks, num_experts=num_experts, expert_units=expert_units, kind=heads, name=heads
        )(shared)
    logits = {task: keras.layers.Dense(1, name=task)(per_task[task]) for task in tasks}
    return logits[tasks[0]] if len(tasks) == 1 else logits
