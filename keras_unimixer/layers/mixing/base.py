"""The mixing-layer contract and the registry of mixer architectures.

A mixing layer maps `(batch, T, D)` tokens to tokens of the same shape (it sits inside the
residuals of `UniMixerBlock`). Subclass `MixingLayer` and implement `build` (call
`self.set_token_shape(input_shape)` first), `call`, `get_config`, and the closed forms
`num_params()` (trainable parameters, checked against `count_params()`) and
`flops_per_example()` (forward matmul FLOPs, checked against XLA's cost analysis). A token-major
`UniMixerEncoder` keeps its activations `(T, batch, D)` between layers and calls
`call_token_major`; the default transposes to `(batch, T, D)` and back around `call`, and a
layer overrides it where it can mix in that layout directly (the contract test checks that both
agree), listing in `token_major_backends` where `layout="auto"` should use it. Layers whose output
is linear in the input for fixed weights also give `mixing_matrix()` (the `(L, L)` matrix,
`L = T * D`); data-dependent ones give `mixing_matrix(inputs)`.

`register_mixer(name, build, ...)` makes a layer an architecture: `RankingModel(mixer=name)`,
`train --model name`, `tune` and `scale` find it there, with its default norm, FFN activation,
the model options it reads and its tuner search space. `keras_unimixer.testing.
run_mixer_contract_test` checks a layer against the contract.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

from keras_unimixer.utils.types import Shape, Tensor
from keras_unimixer.utils.validation import check_token_input_shape


class MixingLayer(keras.layers.Layer):
    """Base class of the token-mixing layers (see the module docstring for the contract).

    Class attributes:
        default_norm: the residual style the architecture uses (`"siamese"`, `"post"`, `"pre"`).
        default_ffn_activation: its per-token FFN (`"swiglu"` or `"gelu"`).
        token_major_backends: backends under which `UniMixerEncoder(layout="auto")` runs this
            layer's blocks token-major (set where a layer's own `call_token_major` was measured
            faster there; none by default).
    """

    default_norm = "pre"
    default_ffn_activation = "swiglu"
    token_major_backends: tuple[str, ...] = ()

    def set_token_shape(self, input_shape: Shape) -> tuple[int, int]:
        """Check `(batch, T, D)` and store `num_tokens`, `token_dim`; returns them."""
        self.num_tokens, self.token_dim = check_token_input_shape(type(self).__name__, input_shape)
        return self.num_tokens, self.token_dim

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def call_token_major(self, inputs: Tensor) -> Tensor:
        """This layer's mixing of token-major `(T, batch, D)` inputs, in that layout.

        The default transposes to `(batch, T, D)`, calls the layer and transposes back; override it
        where the mixing can read and write the token-major layout directly.
        """
        return token_major_by_transposing(self, inputs)

    def num_params(self) -> int:
        """Closed-form number of trainable parameters of the built layer."""
        raise NotImplementedError(f"{type(self).__name__} does not give num_params().")

    def flops_per_example(self) -> int:
        """Closed-form forward matmul FLOPs per example of the built layer (multiply-add = 2)."""
        raise NotImplementedError(f"{type(self).__name__} does not give flops_per_example().")

    def _require_built(self):
        if not self.built:
            raise ValueError(
                f"{type(self).__name__} must be built (called on an input) before this call."
            )


def token_major_by_transposing(layer: keras.Layer, inputs: Tensor) -> Tensor:
    """`layer` (taking `(batch, T, D)`) applied to token-major `(T, batch, D)` inputs."""
    return ops.transpose(layer(ops.transpose(inputs, (1, 0, 2))), (1, 0, 2))


@dataclasses.dataclass(frozen=True)
class MixerSpec:
    """A registered architecture: how to build its mixing layer and its defaults.

    Attributes:
        name: the name used by `RankingModel(mixer=...)`, `train --model`, `tune` and `scale`.
        build: `build(num_tokens, token_dim, **options)` returning a `MixingLayer`.
        options: the model options `build` reads (`ModelConfig` fields, e.g. `"block_size"`).
        norm: default residual style.
        ffn_activation: default per-token FFN activation.
        space: tuner choices per option (`None`: derived from the sampled `T` and `D`).
        annealed: has a temperature (`TemperatureAnnealing` and the temperature options apply).
        description: one line for listings.
    """

    name: str
    build: Callable
    options: tuple = ()
    norm: str = "pre"
    ffn_activation: str = "swiglu"
    space: dict = dataclasses.field(default_factory=dict)
    annealed: bool = False
    description: str = ""

    def make(self, num_tokens: int, token_dim: int, **options: Any) -> keras.Layer:
        """The mixing layer for `(T, D)`; options this architecture does not read are refused
        (a `None` value counts as unset)."""
        given = {key: value for key, value in options.items() if value is not None}
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            raise ValueError(
                f"Mixer {self.name!r} does not take {unknown}; it takes: "
                f"{sorted(self.options) or 'no options'}."
            )
        return self.build(num_tokens, token_dim, **given)


_REGISTRY: dict[str, MixerSpec] = {}


def register_mixer(
    name: str,
    build: Callable,
    *,
    options: Sequence[str] = (),
    norm: str = "pre",
    ffn_activation: str = "swiglu",
    space: dict | None = None,
    annealed: bool = False,
    description: str = "",
    overwrite: bool = False,
) -> MixerSpec:
    """Register an architecture under `name` (see `MixerSpec` for the arguments).

    Example:
    >>> spec = keras_unimixer.layers.mixing.register_mixer(
    ...     "my_fm", lambda num_tokens, token_dim: keras_unimixer.layers.FMMixing(),
    ...     description="FM mixing under another name")
    >>> "my_fm" in keras_unimixer.layers.mixing.mixer_names()
    True
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"A mixer name must be an identifier, got {name!r}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"Mixer {name!r} is already registered (pass overwrite=True).")
    spec = MixerSpec(
        name, build, tuple(options), norm, ffn_activation, dict(space or {}), annealed, description
    )
    _REGISTRY[name] = spec
    return spec


def get_mixer(name: str) -> MixerSpec:
    """The registered `MixerSpec` of `name`; the error lists the registered names."""
    if name not in _REGISTRY:
        raise ValueError(f"`mixer` must be one of {mixer_names()}, got {name!r}.")
    return _REGISTRY[name]


def mixer_names() -> tuple[str, ...]:
    """Every registered architecture, in registration order."""
    return tuple(_REGISTRY)


def make_mixing(name: str, num_tokens: int, token_dim: int, **options: Any) -> keras.Layer:
    """The mixing layer of registered architecture `name` for `(T, D)`."""
    return get_mixer(name).make(num_tokens, token_dim, **options)
