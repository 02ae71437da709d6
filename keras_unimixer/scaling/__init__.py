"""Parameter and FLOP accounting (and, later, scaling-law curves)."""

from keras_unimixer.scaling.counts import flops_per_example, mixing_flops, parameter_counts

__all__ = ["flops_per_example", "mixing_flops", "parameter_counts"]
