import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("mixer", ["unimixer_lite"])
def test_data_parallel_on_two_virtual_devices_matches_one_device(mixer):
    """JAX DataParallel or TF MirroredStrategy (per this pass's backend) over 2 CPU devices."""
    environment = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "distribution_check.py"), mixer],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    assert losses["devices"] == 2
    assert len(losses["single"]) == len(losses["parallel"]) == 2
    np.testing.assert_allclose(losses["parallel"], losses["single"], rtol=1e-4)
    assert losses["single"][1] < losses["single"][0]  # it trained


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="keras.distribution.ModelParallel")
@pytest.mark.parametrize("num_devices", [2, 4])
def test_tables_sharded_over_virtual_devices_train_like_one_device(num_devices):
    """`distribution.sharded_tables`: the tables' rows split over the devices, the rest
    data-parallel, row-sparse Adagrad tables: the losses of one device."""
    environment = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "sharding_check.py"), str(num_devices)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(report["sharded"], report["single"], rtol=1e-5)
    assert report["single"][-1] < report["single"][0]  # it trained
    layouts = report["layouts"]
    assert layouts["user"] == {"spec": ["batch", "None"], "shard_rows": [1000 // num_devices]}
    assert layouts["item"] == {"spec": ["batch", "None"], "shard_rows": [4000 // num_devices]}
    assert layouts["odd"]["shard_rows"] == [1001]  # not divisible: replicated
    assert "Tables of ['odd'] stay replicated" in result.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX multi-process")
def test_two_processes_train_like_one_process_on_the_same_global_batches(tmp_path):
    """Two JAX processes (Gloo CPU collectives), each reading its own shard of the files: first
    data-parallel (`replicated`), then (`sharded`) with each holding half of every table's rows
    and row-sparse Adagrad on the tables."""
    from tests.datasets.test_stream import big_toy

    big_toy(tmp_path, rows=3000, files=4)
    description = str(tmp_path / "toy.json")
    script = str(ROOT / "tests" / "multi_process_check.py")
    environment = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    port, layouts = str(_free_port()), "replicated,sharded"
    workers = [
        subprocess.Popen(
            [sys.executable, script, description, layouts, "process", str(index), "2", port],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for index in range(2)
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    single = subprocess.run(
        [sys.executable, script, description, layouts, "single", "2"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    expected_reports = json.loads(single.stdout.strip().splitlines()[-1])
    for layout in layouts.split(","):
        results, expected = [report[layout] for report in reports], expected_reports[layout]
        assert [r["devices"] for r in results] == [2, 2] and expected["devices"] == 1
        assert results[0]["steps"] == results[1]["steps"] == expected["steps"] >= 30
        for result in results:
            np.testing.assert_allclose(result["loss"], expected["loss"], rtol=1e-5)
            np.testing.assert_allclose(result["checksum"], expected["checksum"], rtol=1e-5)
        assert expected["loss"][1] < expected["loss"][0]  # it trained
        vocabulary = expected["vocabulary"]
        assert expected["table_rows"] == {name: [size] for name, size in vocabulary.items()}
        for result in results:  # each process holds its own rows only where the split is even
            assert result["table_rows"] == {
                name: [size // 2 if layout == "sharded" and size % 2 == 0 else size]
                for name, size in vocabulary.items()
            }
    assert any(size % 2 == 0 for size in vocabulary.values()), vocabulary  # something was split
    replicated, sharded = expected_reports["replicated"], expected_reports["sharded"]
    assert replicated["loss"] != sharded["loss"]  # two different runs, not one reported twice


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX multi-process")
@pytest.mark.parametrize(
    "arguments, message",
    [
        (("localhost:1234", 0, 0), "num_processes"),
        (("localhost:1234", 2, 2), r"process_id.*\[0, 1\]"),
        (("localhost", 2, 0), "coordinator_address"),
    ],
)
def test_initialize_processes_names_bad_arguments(arguments, message):
    from keras_unimixer import distribution

    with pytest.raises(ValueError, match=message):
        distribution.initialize_processes(*arguments)


def test_process_batches_need_a_global_batch_divisible_by_the_processes(tmp_path):
    from keras_unimixer import distribution
    from tests.datasets.test_stream import big_toy

    data = big_toy(tmp_path, rows=500, files=2)
    with pytest.raises(ValueError, match="global_batch_size"):
        distribution.ProcessBatches(data, "train", 255, process=(0, 2))
    shards = [distribution.ProcessBatches(data, "train", 64, process=(i, 2)) for i in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == min(s.local.num_rows for s in shards) // 32
    assert shards[0][0][1].shape == (32, 1)
