"""Run by tests/experiments/test_artifacts.py: `train` killed with SIGKILL at one of its save
points.

Usage: fault_check.py OUTPUT POINT [N]. POINT:
- `checkpoint_model`: after the N-th checkpoint's model is saved, before its state and marker;
- `checkpoint_written`: after the N-th checkpoint folder is renamed into place, before pruning;
- `final_model`: when the finished run's model.keras is about to be renamed into place;
- `manifest`: when run.json is about to be written.
`--resume` of the same command must then finish with the metrics of an uninterrupted run.
"""

import os
import signal
import sys
from pathlib import Path

import keras

from keras_unimixer.experiments import artifacts, training

SETTINGS = dict(
    dataset="synthetic",
    max_examples=4000,
    epochs=3,
    batch_size=128,
    learning_rate=1e-2,
    num_layers=1,
    num_tokens=4,
    token_dim=8,
    embedding_dim=4,
    hidden_units=(8,),
    patience=5,
    verbose=0,
)


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def main(output, point, count=1):
    calls = {"n": 0}

    def nth_call():
        calls["n"] += 1
        return calls["n"] == count

    if point == "checkpoint_model":
        save = keras.Model.save

        def save_then_die(self, path, *args, **kwargs):
            save(self, path, *args, **kwargs)
            if ".tmp" in str(Path(path).parent.name) and nth_call():
                die()

        keras.Model.save = save_then_die
    elif point == "checkpoint_written":
        prune = artifacts.prune_checkpoints

        def die_before_pruning(directory, keep):
            if nth_call():
                die()
            prune(directory, keep)

        artifacts.prune_checkpoints = die_before_pruning
    elif point == "final_model":
        replace = os.replace

        def die_before_rename(source, destination):
            if Path(destination) == Path(output) / "model.keras":
                die()
            replace(source, destination)

        artifacts.os.replace = die_before_rename
    elif point == "manifest":
        artifacts.write_manifest = lambda *args, **kwargs: die()
    training.train(training.TrainConfig(output=output, **SETTINGS))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
