"""Initializers: identities and RankMixer's token-mixing permutation for mixing matrices, and
embedding tables drawn a block of rows at a time."""

from __future__ import annotations

import functools
import random

import keras
import numpy as np
from keras.src.backend.common.stateless_scope import in_stateless_scope  # deferred variables

from keras_unimixer.utils.validation import check_positive_int


def _fixed_seed(seed: int | None) -> int:
    """An integer seed for `seed` (drawn from Python's `random` when None, as Keras' own random
    initializers do): an initializer called inside a traced `fit` step (a model built lazily, e.g.
    a subclassed one) may not use Keras' global unseeded generator, and `keras.utils.
    set_random_seed` still makes the draw reproducible."""
    if seed is None:
        return random.randint(1, 10**9)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"`seed` must be an int or None, got {seed!r}.")
    return seed


def token_mixing_permutation(num_tokens: int, num_heads: int) -> np.ndarray:
    """RankMixer's TokenMixing as a block permutation `Pi`.

    Cut a flattened `(num_tokens, token_dim)` sample into `num_tokens * num_heads` blocks of size
    `token_dim / num_heads`. Input block `t * num_heads + h` (head `h` of token `t`) goes to output
    block `h * num_tokens + t`, so `flat_out = kron(Pi, I_d) @ flat_in`.

    Args:
        num_tokens: number of tokens `T`.
        num_heads: number of heads `H` each token is split into.

    Returns:
        A float32 array of shape `(T * H, T * H)` with exactly one 1 in every row and column.

    Example:
    >>> token_mixing_permutation(2, 2)
    array([[1., 0., 0., 0.],
           [0., 0., 1., 0.],
           [0., 1., 0., 0.],
           [0., 0., 0., 1.]], dtype=float32)
    """
    check_positive_int("num_tokens", num_tokens)
    check_positive_int("num_heads", num_heads)
    size = num_tokens * num_heads
    permutation = np.zeros((size, size), dtype="float32")
    for token in range(num_tokens):
        for head in range(num_heads):
            permutation[head * num_tokens + token, token * num_heads + head] = 1.0
    return permutation


@keras.saving.register_keras_serializable(package="keras_unimixer")
class StackedIdentity(keras.initializers.Initializer):
    """`scale * I` over the last two axes, stacked over the leading ones (`(..., n, n)`), plus
    optional Gaussian noise (so that stacked copies differ, e.g. UniMixing-Lite's basis matrices,
    whose mixing coefficients get no gradient while all of them are equal).

    Args:
        scale: float. Value of the diagonal. Defaults to `1.0`.
        noise_stddev: float. Standard deviation of the added noise (0: exact identities). Defaults
            to `0.0`.
        seed: int or `None`. Seed of the noise. Defaults to `None`.
    """

    def __init__(
        self, scale: float = 1.0, noise_stddev: float = 0.0, seed: int | None = None
    ) -> None:
        self.scale = float(scale)
        self.noise_stddev = float(noise_stddev)
        self._init_seed = seed
        self.seed = _fixed_seed(seed) if self.noise_stddev else seed  # noiseless: no draws

    def __call__(self, shape, dtype=None):
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise ValueError(
                f"StackedIdentity needs a shape ending in two equal axes (..., n, n), got {shape}."
            )
        eye = self.scale * np.broadcast_to(np.eye(shape[-1], dtype="float32"), tuple(shape))
        eye = keras.ops.cast(np.array(eye), dtype or "float32")
        if not self.noise_stddev:
            return eye
        noise = keras.random.normal(
            tuple(shape), stddev=self.noise_stddev, dtype=dtype or "float32", seed=self.seed
        )
        return eye + noise

    def get_config(self) -> dict:
        return {"scale": self.scale, "noise_stddev": self.noise_stddev, "seed": self._init_seed}


@keras.saving.register_keras_serializable(package="keras_unimixer")
class TokenMixingPermutation(keras.initializers.Initializer):
    """Initializes an `(T*H, T*H)` matrix to `token_mixing_permutation(num_tokens, num_heads)`."""

    def __init__(self, num_tokens: int, num_heads: int, scale: float = 1.0) -> None:
        self.num_tokens = check_positive_int("num_tokens", num_tokens)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.scale = float(scale)

    def __call__(self, shape, dtype=None):
        size = self.num_tokens * self.num_heads
        if tuple(shape) != (size, size):
            raise ValueError(
                f"TokenMixingPermutation(num_tokens={self.num_tokens}, num_heads={self.num_heads}) "
                f"initializes shape ({size}, {size}), got {tuple(shape)}."
            )
        matrix = self.scale * token_mixing_permutation(self.num_tokens, self.num_heads)
        return keras.ops.cast(matrix, dtype or "float32")

    def get_config(self) -> dict:
        return {"num_tokens": self.num_tokens, "num_heads": self.num_heads, "scale": self.scale}


def circular_factors(
    size: int, rank: int, scale: float, target: tuple[int, int] | None = None
) -> tuple:
    """Rank-`rank` factors `A`, `B` (`(size, rank)`) with `A @ B.T` peaked where `target` is 1.

    Row `i` of `A` is `sqrt(scale / h) * [cos(k theta_i), sin(k theta_i)]` for `k = 1..h`,
    `h = rank // 2`, `theta_i = 2 pi i / size`; row `j` of `B` is the row of `A` of the index that
    `target` maps to `j` (`target` = identity by default). So `(A B^T)[i, j] = (scale / h) *
    sum_k cos(k (theta_i - theta_p(j)))`, which is `scale` exactly where `target[i, j] = 1` and
    smaller elsewhere: a low-rank logit matrix whose `exp` leans towards the target permutation
    (UniMixing-Lite's identity-like or TokenMixing-like start). An odd last column is zero.
    """
    if rank < 2:
        raise ValueError(f"An identity-like low-rank start needs `rank` >= 2, got {rank}.")
    harmonics = rank // 2
    theta = 2.0 * np.pi * np.arange(size) / size
    angles = np.outer(theta, np.arange(1, harmonics + 1))
    left = np.zeros((size, rank), dtype="float64")
    left[:, 0 : 2 * harmonics : 2] = np.cos(angles)
    left[:, 1 : 2 * harmonics : 2] = np.sin(angles)
    left *= np.sqrt(scale / harmonics)
    target = np.eye(size) if target is None else np.asarray(target)
    source_of = np.argmax(target, axis=0)  # target[source_of[j], j] == 1
    return left.astype("float32"), left[source_of].astype("float32")


@keras.saving.register_keras_serializable(package="keras_unimixer")
class CircularFactor(keras.initializers.Initializer):
    """One factor of `circular_factors` (`side` "left" or "right"), plus Gaussian noise.

    Args:
        side: str. `"left"` (`A`) or `"right"` (`B`).
        scale: float. The logit value on the target's support.
        target: `None` (identity) or `(num_tokens, num_heads)` of RankMixer's permutation. Defaults
            to `None`.
        noise_stddev: float. Standard deviation of the added noise. Defaults to `0.0`.
        seed: seed of the noise. Defaults to `None`.
    """

    def __init__(
        self,
        side: str,
        scale: float,
        target: tuple[int, int] | None = None,
        noise_stddev: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if side not in ("left", "right"):
            raise ValueError(f"`side` must be 'left' or 'right', got {side!r}.")
        self.side = side
        self.scale = float(scale)
        self.target = None if target is None else [int(v) for v in target]
        self.noise_stddev = float(noise_stddev)
        self._init_seed = seed
        self.seed = _fixed_seed(seed) if self.noise_stddev else seed  # noiseless: no draws

    def __call__(self, shape, dtype=None):
        size, rank = shape
        target = None if self.target is None else token_mixing_permutation(*self.target)
        if target is not None and target.shape[0] != size:
            raise ValueError(f"Target permutation of size {target.shape[0]} for shape {shape}.")
        left, right = circular_factors(size, rank, self.scale, target)
        factor = keras.ops.cast(left if self.side == "left" else right, dtype or "float32")
        if not self.noise_stddev:
            return factor
        noise = keras.random.normal(
            tuple(shape), stddev=self.noise_stddev, dtype=dtype or "float32", seed=self.seed
        )
        return factor + noise

    def get_config(self) -> dict:
        return {
            "side": self.side,
            "scale": self.scale,
            "target": self.target,
            "noise_stddev": self.noise_stddev,
            "seed": self._init_seed,
        }


def distinct(
    initializer: keras.initializers.Initializer, index: int
) -> keras.initializers.Initializer:
    """`initializer` for the `index`-th of several weights that share it.

    A Keras 3 initializer instance fixes its seed when it is made, so every call gives the same
    values: weights built from one instance start identical (e.g. SwiGLU's hidden and gate
    kernels, attention's query and key). The copy for `index` > 0 has its own seed, derived from
    the instance's, so the weights differ and a seeded model stays reproducible. Initializers
    without a seed (deterministic ones) are returned as they are.
    """
    seed = getattr(initializer, "seed", None)
    if index == 0 or isinstance(seed, bool) or not isinstance(seed, int):
        return initializer
    config = initializer.get_config()
    if "seed" not in config:
        return initializer
    config["seed"] = (seed + 1_000_003 * index) % (2**31 - 1)
    return type(initializer).from_config(config)


@keras.saving.register_keras_serializable(package="keras_unimixer")
class Scaled(keras.initializers.Initializer):
    """Another initializer's values times `factor` (e.g. a parameter stored divided by a learning
    rate multiplier starts from the same effective value).

    Args:
        initializer: a Keras initializer (or its name / config). What is scaled.
        factor: float. The factor.
    """

    def __init__(self, initializer: str | dict | keras.Initializer, factor: float) -> None:
        self.initializer = keras.initializers.get(initializer)
        self.factor = float(factor)

    def __call__(self, shape, dtype=None):
        return self.initializer(shape, dtype=dtype) * self.factor

    def get_config(self) -> dict:
        return {
            "initializer": keras.initializers.serialize(self.initializer),
            "factor": self.factor,
        }


# Initializers whose values are drawn independently per entry with a shape-free distribution: a
# block of rows drawn alone has the same distribution as the block drawn with the whole table.
_ENTRYWISE = (
    keras.initializers.RandomUniform,
    keras.initializers.RandomNormal,
    keras.initializers.TruncatedNormal,
)


@keras.saving.register_keras_serializable(package="keras_unimixer")
class RowChunked(keras.initializers.Initializer):
    """Draws a large `(rows, dim)` table `chunk_rows` rows at a time, into its final buffer.

    A random initializer called on a whole table holds its temporaries (random bits, their float
    conversion, the scaled result) at the table's size: for a 10^8 x 4 float32 table (1.5 GiB),
    about 3x the table on top of it under JAX and 2x under TensorFlow. `RowChunked` calls
    `initializer` on blocks of `chunk_rows` rows, each with a seed derived from the initializer's
    seed and the block's index, and writes each block into the table. Under JAX the writes are in
    place: a jitted update donates the table. Called on a shape under TensorFlow, it concatenates
    the blocks, which costs one extra table at the peak. `add_table_weight` avoids that extra
    table. It makes a zero variable, which TensorFlow adopts without a copy, and then writes each
    block into the variable with `scatter_update`. Three other ways cost the full extra table
    (10^8 x 4 float32, measured): an XLA-compiled fill or concatenation, a numpy buffer, and sliced
    `assign`s.

    Only initializers that draw every entry independently from a distribution that does not depend
    on the shape are drawn in blocks (`RandomUniform`, `RandomNormal`, `TruncatedNormal`); any
    other (e.g. `VarianceScaling`, whose scale depends on the shape) and tables of at most
    `chunk_rows` rows are drawn whole, with the values `initializer` alone gives. A chunked table's
    values differ from the whole-table draw of the same seed (the same distribution, other draws).

    Args:
        initializer: a Keras initializer (or its name / config). What each block is drawn from.
        chunk_rows: int. Rows per block. Defaults to `1048576` (2^20).

    Example:
    >>> init = RowChunked(keras.initializers.RandomUniform(-0.05, 0.05, seed=1), chunk_rows=4)
    >>> table = init((10, 3))
    >>> tuple(table.shape), bool(keras.ops.max(keras.ops.abs(table)) <= 0.05)
    ((10, 3), True)
    """

    def __init__(
        self, initializer: str | dict | keras.Initializer, chunk_rows: int = 2**20
    ) -> None:
        self.initializer = keras.initializers.get(initializer)
        self.chunk_rows = check_positive_int("chunk_rows", chunk_rows)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if not self.draws_in_blocks(shape):
            return self.initializer(shape, dtype=dtype)
        dtype = dtype or "float32"
        blocks = self._blocks(shape, dtype)
        if keras.backend.backend() == "jax":
            return _write_blocks_in_place(shape, dtype, blocks)
        return keras.ops.concatenate([block for _, block in blocks], axis=0)

    def draws_in_blocks(self, shape: tuple) -> bool:
        """Whether a table of `shape` is drawn block by block (else whole, by `initializer`)."""
        entrywise = type(self.initializer) in _ENTRYWISE
        return len(shape) == 2 and shape[0] > self.chunk_rows and entrywise

    def fill(self, variable: keras.Variable) -> None:
        """Write this initializer's values into `variable` (2-D), one block at a time, in place.

        The values equal `self(variable.shape)`. Under TensorFlow each block is a `scatter_update`
        into the variable's buffer, so the peak is the table plus one block.
        """
        shape, dtype = tuple(variable.shape), variable.dtype
        if not self.draws_in_blocks(shape) or keras.backend.backend() != "tensorflow":
            variable.assign(self(shape, dtype=dtype))
            return
        import tensorflow as tf

        with tf.init_scope():  # a build traced inside a tf.function still fills the real variable
            for start, block in self._blocks(shape, dtype):
                rows = tf.range(start, start + block.shape[0])
                variable.value.scatter_update(tf.IndexedSlices(block, rows))

    def _blocks(self, shape: tuple, dtype):
        """`(first row, block)` pairs, each block drawn by its own initializer."""
        for index, start in enumerate(range(0, shape[0], self.chunk_rows)):
            rows = min(self.chunk_rows, shape[0] - start)
            yield start, self._block(index)((rows, shape[1]), dtype)

    def _block(self, index: int):
        """The initializer of block `index`: its own seed, derived from the initializer's."""
        seed = self.initializer.seed
        if not isinstance(seed, int) or isinstance(seed, bool):
            return self.initializer  # a SeedGenerator draws anew on every call
        config = self.initializer.get_config()
        config["seed"] = int(np.random.SeedSequence([seed, index]).generate_state(1)[0] >> 1)
        return type(self.initializer).from_config(config)

    def get_config(self) -> dict:
        return {
            "initializer": keras.initializers.serialize(self.initializer),
            "chunk_rows": self.chunk_rows,
        }


def _write_blocks_in_place(shape, dtype, blocks):
    """JAX: a zero table, each block written into it by an update that donates the table (so
    XLA reuses its buffer instead of copying the table once per block)."""
    import jax

    write = _jitted_block_writer()
    table = jax.numpy.zeros(shape, dtype)
    for start, block in blocks:
        table = write(table, block, start)
    return table


@functools.cache
def _jitted_block_writer():
    # One jitted function for every table: it compiles once per (table, block) shape and dtype.
    import jax

    return jax.jit(
        lambda table, block, start: jax.lax.dynamic_update_slice(table, block, (start, 0)),
        donate_argnums=0,
    )


def add_table_weight(
    layer: keras.Layer,
    name: str,
    shape: tuple,
    initializer: RowChunked,
    regularizer: keras.regularizers.Regularizer | None = None,
) -> keras.Variable:
    """`layer.add_weight` for a `RowChunked` table. Under TensorFlow, a table drawn in blocks is
    created as zeros and then filled in place (`RowChunked.fill`). Drawing the whole table first
    and copying it into the variable would double the table at the peak. Elsewhere, including
    under a `tf.distribute` strategy (mirrored copies) and in a stateless scope (where Keras defers
    the variable's value, e.g. a model that `fit` builds in its first step), this is
    `add_weight`."""
    in_place = (
        _tensorflow_without_strategy()
        and not in_stateless_scope()
        and initializer.draws_in_blocks(shape)
    )
    variable = layer.add_weight(
        name=name,
        shape=shape,
        initializer="zeros" if in_place else initializer,
        regularizer=regularizer,
    )
    if in_place:
        initializer.fill(variable)
    return variable


def _tensorflow_without_strategy() -> bool:
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.distribute.has_strategy()
