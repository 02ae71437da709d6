"""Which model reads which option: what the command line and the experiments check a run's
options against (`check_options_apply`)."""

from keras_unimixer.layers.mixing import get_mixer, mixer_names
from keras_unimixer.models.config import BASELINE_OPTIONS, MODEL_OPTIONS
from keras_unimixer.models.ranking import mixer_options

BASELINES = tuple(BASELINE_OPTIONS)
# Training options that only architectures with a temperature read.
TEMPERATURE_OPTIONS = (
    "temperature_start",
    "temperature_end",
    "temperature_schedule",
    "anneal_epochs",
)


def model_names() -> tuple[str, ...]:
    """Every model `build_model` knows: the registered mixers, then the baselines."""
    return mixer_names() + BASELINES


def options_of(name: str) -> tuple:
    """The `ModelConfig` (and temperature) options model `name` reads."""
    if name in BASELINE_OPTIONS:
        return BASELINE_OPTIONS[name]
    spec = get_mixer(name)
    return mixer_options(name) + (TEMPERATURE_OPTIONS if spec.annealed else ())


def check_options_apply(name: str, options: dict) -> None:
    """Refuse options (set explicitly, e.g. on the command line) that model `name` does not read.

    Example:
    >>> check_options_apply("rankmixer", ["num_heads"])
    Traceback (most recent call last):
    ...
    ValueError: `num_heads` does not apply to model 'rankmixer'; it applies to: attention, hiformer.
    """
    known = set(MODEL_OPTIONS) | set(TEMPERATURE_OPTIONS)
    readable = set(options_of(name))
    for option in options:
        if option in known and option not in readable:
            users = [model for model in model_names() if option in options_of(model)]
            raise ValueError(
                f"`{option}` does not apply to model {name!r}; it applies to: {', '.join(users)}."
            )
