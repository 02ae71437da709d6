"""Argument checks shared by the layers: errors name the argument, its value and the valid range."""

from __future__ import annotations

from collections.abc import Collection

from keras_unimixer.utils.types import Shape


def check_positive_int(name: str, value: object) -> int:
    """Return `value` if it is an int >= 1, otherwise raise a `ValueError` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer (>= 1), got {value!r}.")
    return value


def check_non_negative_int(name: str, value: object) -> int:
    """Return `value` if it is an int >= 0, otherwise raise a `ValueError` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer (>= 0), got {value!r}.")
    return value


def check_positive_float(name: str, value: object) -> float:
    """Return `value` as a float if it is a finite number > 0, otherwise raise a `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"`{name}` must be a number > 0, got {value!r}.")
    if value == float("inf"):
        raise ValueError(f"`{name}` must be finite, got {value!r}.")
    return float(value)


def check_rate(name: str, value: object) -> float:
    """Return `value` as a float if it is a number in `[0, 1)` (a dropout rate), otherwise raise
    a `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1), got {value!r}.")
    return float(value)


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """Return `value` if it is one of `choices`, otherwise raise a `ValueError` listing them."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(choices)}, got {value!r}.")
    return value


def check_token_input_shape(layer_name: str, input_shape: Shape) -> tuple[int, int]:
    """Check a `(batch, num_tokens, token_dim)` input shape and return `(num_tokens, token_dim)`."""
    if len(input_shape) != 3:
        raise ValueError(
            f"{layer_name} expects inputs of rank 3, shaped (batch, num_tokens, token_dim); "
            f"got shape {tuple(input_shape)} (rank {len(input_shape)})."
        )
    num_tokens, token_dim = input_shape[1], input_shape[2]
    if num_tokens is None or token_dim is None:
        raise ValueError(
            f"{layer_name} needs static num_tokens and token_dim (axes 1 and 2); "
            f"got shape {tuple(input_shape)}."
        )
    return int(num_tokens), int(token_dim)


def divisors(value: int) -> list[int]:
    """All positive divisors of `value`, ascending."""
    return [d for d in range(1, value + 1) if value % d == 0]


def check_head_dim(num_heads: int, token_dim: int) -> int:
    """`token_dim // num_heads`, refusing a head count that does not divide the token width."""
    if token_dim % num_heads:
        raise ValueError(
            f"`num_heads`={num_heads} must divide token_dim={token_dim}; "
            f"valid values: {divisors(token_dim)}."
        )
    return token_dim // num_heads
