"""Parameter and FLOP accounting, scaling ladders with power-law fits, and model inspection."""

from keras_unimixer.experiments.scaling.fit import fit_power_law, log_linear_fit
from keras_unimixer.experiments.scaling.inspect import inspect_model, permutation_closeness
from keras_unimixer.experiments.scaling.ladder import (
    QUICK,
    SIZES,
    VARIANTS,
    LadderConfig,
    ablation_table,
    fit_ladder,
    merge_ladders,
    run_ladder,
)
from keras_unimixer.utils.accounting import flops_per_example, mixing_flops, parameter_counts

__all__ = [
    "QUICK",
    "SIZES",
    "VARIANTS",
    "LadderConfig",
    "ablation_table",
    "fit_ladder",
    "fit_power_law",
    "flops_per_example",
    "inspect_model",
    "log_linear_fit",
    "merge_ladders",
    "mixing_flops",
    "parameter_counts",
    "permutation_closeness",
    "run_ladder",
]
