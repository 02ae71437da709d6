"""Keras Tuner search space over the UniMixer family: only legal configurations are sampled."""

from __future__ import annotations

import itertools
import math
from functools import reduce

import keras_tuner

from keras_unimixer.callbacks import TemperatureAnnealing, temperature_variables
from keras_unimixer.layers.mixing import get_mixer, mixer_names
from keras_unimixer.models import RankingModel, compile_ranking
from keras_unimixer.utils.validation import divisors

DEFAULT_SPACE = {
    "mixer": None,  # default: every registered mixer (keras_unimixer.layers.mixing.mixer_names())
    "num_layers": [1, 2, 3, 4],
    "num_tokens": [4, 8, 16],
    "token_dim": [16, 32, 64],
    "block_size": None,  # default: every divisor of gcd(T * D) from 4 to 64
    "num_heads": None,  # default: divisors of gcd(D) up to 8
    "num_basis": [2, 4, 8],
    "rank": [2, 4, 8],
    "ffn_multiplier": [1, 2, 4],
    "norm": ["siamese", "post", "pre"],
    "learning_rate": [1e-4, 1e-2],  # log-uniform range
    "temperature_end": [0.05, 0.1, 0.3, 1.0],
}


def _checked_space(space: dict) -> dict:
    """Each entry a non-empty list of choices (a single value becomes a one-choice list);
    `learning_rate` a `[low, high]` range with `0 < low <= high`."""
    checked = {}
    for name, choices in space.items():
        if choices is None and DEFAULT_SPACE.get(name, "derived") is None:
            checked[name] = None
            continue
        if not isinstance(choices, (list, tuple)):
            choices = [choices]
        if not choices or any(choice is None for choice in choices):
            raise ValueError(
                f"Search-space entry {name!r} must list at least one choice, got {choices!r}."
            )
        checked[name] = list(choices)
    rates = checked.get("learning_rate")
    if rates is not None:
        if len(rates) == 1:
            rates = rates * 2
        if (
            len(rates) != 2
            or not all(isinstance(r, (int, float)) for r in rates)
            or not (0 < rates[0] <= rates[1])
        ):
            raise ValueError(
                f"Search-space entry 'learning_rate' must be [low, high] with 0 < low <= high, "
                f"got {checked['learning_rate']!r}."
            )
        checked["learning_rate"] = rates
    return checked


def _gcd(values) -> int:
    return reduce(math.gcd, values)


class UniMixerHyperModel(keras_tuner.HyperModel):
    """Builds `RankingModel`s from a Keras Tuner search space.

    Block sizes are drawn from the divisors of `gcd(T * D)` over the token and width choices,
    heads from the divisors of `gcd(D)`, UniMixing-Lite's rank is capped by the model at the
    sampled configuration's block count, and RankMixer's `D % T == 0` is checked for every
    combination at construction, so no
    trial can fail on a shape error.

    Args:
        features: the dataset's `FeatureSpec`s.
        tasks: label names.
        space: overrides of `DEFAULT_SPACE` (lists of choices; `learning_rate` is `[low, high]`).
        embedding_dim: fixed embedding size.
        hidden_units: fixed sizes of the MLP under the encoder.
    """

    def __init__(
        self,
        features,
        tasks=("click",),
        space=None,
        embedding_dim=16,
        hidden_units=(64,),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.features = features
        self.tasks = list(tasks)
        self.embedding_dim = embedding_dim
        self.hidden_units = tuple(hidden_units)
        valid = set(DEFAULT_SPACE) | {
            key for name in mixer_names() for key in get_mixer(name).space
        }
        unknown = set(space or {}) - valid
        if unknown:
            raise ValueError(
                f"Unknown search-space keys {sorted(unknown)}; valid: {sorted(valid)}."
            )
        mixer_spaces = {
            key: choices
            for name in mixer_names()
            for key, choices in get_mixer(name).space.items()
            if key not in DEFAULT_SPACE
        }
        self.space = {**DEFAULT_SPACE, **mixer_spaces, **_checked_space(space or {})}
        self._derive_valid_choices()

    def _derive_valid_choices(self):
        space = self.space
        if space["mixer"] is None:
            space["mixer"] = list(mixer_names())
        for mixer in space["mixer"]:
            get_mixer(mixer)  # names the registered mixers if it is not one
        flat_gcd = _gcd([t * d for t in space["num_tokens"] for d in space["token_dim"]])
        if space["block_size"] is None:
            space["block_size"] = [b for b in divisors(flat_gcd) if 4 <= b <= 64] or [flat_gcd]
        bad = [b for b in space["block_size"] if flat_gcd % b]
        if bad:
            raise ValueError(
                f"`block_size` choices {bad} do not divide every T * D of the space; valid: "
                f"{divisors(flat_gcd)}."
            )
        width_gcd = _gcd(space["token_dim"])
        if space["num_heads"] is None:
            space["num_heads"] = [h for h in divisors(width_gcd) if h <= 8]
        # Every mixer must build at every (T, D) of the space (e.g. RankMixer needs T | D).
        for mixer in space["mixer"]:
            for tokens, dim in itertools.product(space["num_tokens"], space["token_dim"]):
                try:
                    get_mixer(mixer).make(tokens, dim)
                except ValueError as error:
                    raise ValueError(
                        f"mixer {mixer!r} cannot be built at num_tokens={tokens}, "
                        f"token_dim={dim} of the search space: {error}"
                    ) from None

    def _option_users(self) -> dict:
        """Each mixer-specific option of the space, with the mixers (in the space) that read it."""
        users: dict = {}
        for mixer in self.space["mixer"]:
            for option in get_mixer(mixer).space:
                users.setdefault(option, []).append(mixer)
        return users

    def build(self, hp):
        space = self.space
        mixer = hp.Choice("mixer", space["mixer"])
        learning_rate = hp.Float(
            "learning_rate", space["learning_rate"][0], space["learning_rate"][1], sampling="log"
        )
        arguments = dict(
            mixer=mixer,
            num_layers=hp.Choice("num_layers", space["num_layers"]),
            num_tokens=hp.Choice("num_tokens", space["num_tokens"]),
            token_dim=hp.Choice("token_dim", space["token_dim"]),
            ffn_multiplier=hp.Choice("ffn_multiplier", space["ffn_multiplier"]),
            embedding_dim=self.embedding_dim,
            hidden_units=self.hidden_units,
            tasks=self.tasks,
        )
        annealed = [m for m in space["mixer"] if get_mixer(m).annealed]
        with hp.conditional_scope("mixer", annealed):
            if mixer in annealed:
                arguments["norm"] = hp.Choice("norm", space["norm"])
                hp.Choice("temperature_end", space["temperature_end"])
        for option, users in self._option_users().items():
            with hp.conditional_scope("mixer", users):
                if mixer in users:
                    # UniMixing-Lite's rank is capped at the sampled configuration's blocks.
                    arguments[option] = hp.Choice(option, space[option])
        model = RankingModel(self.features, **arguments)
        compile_ranking(model, self.tasks, learning_rate)
        return model

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        if args and hasattr(args[0], "restart"):  # the package's batches: epoch e's order again
            args[0].restart(kwargs.get("initial_epoch", 0))
        callbacks = list(callbacks or [])
        if temperature_variables(model) and hp.values.get("temperature_end") is not None:
            callbacks.append(TemperatureAnnealing(start=1.0, end=hp.get("temperature_end")))
        return model.fit(*args, callbacks=callbacks, **kwargs)


__all__ = ["DEFAULT_SPACE", "UniMixerHyperModel"]
