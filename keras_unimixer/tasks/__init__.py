"""Backend-neutral ranking and retrieval tasks (TFRS argument names), for TensorFlow and JAX."""

from keras_unimixer.tasks.models import TaskModel, TwoTowerModel
from keras_unimixer.tasks.ranking import Ranking
from keras_unimixer.tasks.retrieval import BruteForceIndex, FactorizedTopK, Retrieval

__all__ = [
    "BruteForceIndex",
    "FactorizedTopK",
    "Ranking",
    "Retrieval",
    "TaskModel",
    "TwoTowerModel",
]
