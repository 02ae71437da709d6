"""What a user of the command line sees: one-line errors, help, logs, one writer per run folder."""

import argparse
import dataclasses
import json
import logging
import subprocess
import sys

import pytest

from keras_unimixer.experiments import artifacts, cli, training
from keras_unimixer.experiments.training import TrainConfig
from keras_unimixer.models import ModelConfig
from keras_unimixer.utils import allocator
from tests.experiments.test_training import SMALL

HOLD_LOCK = """
import sys, time
from keras_unimixer.experiments import artifacts
with artifacts.run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holders_lock_is_taken_over(
    tmp_path, caplog
):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        expected = f"in use by another run \\(process {holder.pid}"
        with pytest.raises(artifacts.RunLocked, match=expected):
            training.train(TrainConfig(output=str(tmp_path), **SMALL))
        assert not (tmp_path / "config.json").exists()  # refused before touching the folder
    finally:
        holder.kill()
        holder.wait()
    with caplog.at_level(logging.WARNING, logger="keras_unimixer.experiments.artifacts"):
        with artifacts.run_lock(tmp_path):
            assert (tmp_path / artifacts.LOCK_FILE).read_text() != str(holder.pid)
    assert f"Taking over the lock of process {holder.pid}" in caplog.text
    assert (tmp_path / artifacts.LOCK_FILE).read_text() == ""  # released


def test_train_flags_are_the_config_fields_they_set():
    parser = argparse.ArgumentParser()
    cli.train.add_arguments(parser)
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    by_field = {
        action.dest: action.option_strings for action in parser._actions if action.dest in fields
    }
    mismatched = {
        dest: flags
        for dest, flags in by_field.items()
        if flags[0] != cli.train.flag(dest) or flags[1:] not in ([], [f"--no-{flags[0][2:]}"])
    }
    assert mismatched == {}
    assert cli.train.flag("num_layers") == "--num-layers"
    # Every model option is a flag (the mixing-layer arguments as JSON), except the initial
    # temperature (which the temperature schedule sets) and the FFN activation.
    missing = {f.name for f in dataclasses.fields(ModelConfig)} - set(by_field)
    assert missing == {"temperature", "ffn_activation"}


def test_mixing_options_rank_and_block_dropout_are_flags(capsys):
    parser = argparse.ArgumentParser()
    cli.train.add_arguments(parser)
    args = parser.parse_args(
        ["--mixing-options", '{"normalization": "l2"}', "--rank", "full", "--block-dropout", "0.1"]
    )
    config = cli.train.config_from_args(args)
    assert (config.mixing_options, config.rank, config.block_dropout) == (
        {"normalization": "l2"},
        "full",
        0.1,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--mixing-options", "[1, 2]"])
    assert "must be a JSON object" in capsys.readouterr().err


def test_usage_errors_are_one_line_and_name_the_bad_value(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--hidden-units", "64,abc"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("keras_unimixer train: error: argument --hidden")
    assert "'abc' is not one" in error and "_int_list" not in error


def test_help_says_what_a_benchmark_protocol_sets_and_writes_lists_as_typed(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    output_help = text[text.index("--output OUTPUT") :].split("\n  --")[0]
    assert "frappe_x1" not in output_help

    def option_help(option):  # the option's help text, unwrapped
        return " ".join(text[text.index(f"\n  {option}") :].split("\n  --")[1].split())

    assert option_help("--batch-size").endswith("512; --dataset frappe_x1 or movielens sets it)")
    assert option_help("--embedding-l2").endswith("(default: 0.0; --dataset frappe_x1 sets it)")
    with pytest.raises(SystemExit):
        cli.main(["scale", "--help"])
    text = capsys.readouterr().out
    assert "(default: 0,1,2)" in text and "(0, 1, 2)" not in text
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    assert "TF Serving version folder" in capsys.readouterr().out


def test_export_refuses_an_output_that_is_a_file_before_exporting(tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read: the output is checked first")
    occupied = tmp_path / "occupied"
    occupied.write_text("")
    with pytest.raises(FileExistsError, match="is a file; it must be a folder"):
        cli.export.export_from_args(
            argparse.Namespace(
                model=str(model),
                output=str(occupied),
                export_format="savedmodel",
                preprocessing=None,
                version=None,
                opset=None,
            )
        )


def test_a_run_off_a_terminal_prints_one_line_per_epoch(tmp_path, capsys):
    config = TrainConfig(output=str(tmp_path), **{**SMALL, "epochs": 2, "verbose": "auto"})
    training.train(config)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(" - ")[0] for line in epoch_lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("val_auc: " in line for line in epoch_lines)
    assert not [line for line in lines if line.startswith("Epoch ")]  # Keras' header lines


def test_the_command_line_starts_without_library_chatter(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_unimixer",
            "train",
            "--max-examples",
            "2000",
            "--epochs",
            "1",
            "--batch-size",
            "256",
            "--num-layers",
            "1",
            "--num-tokens",
            "4",
            "--token-dim",
            "8",
            "--embedding-dim",
            "4",
            "--hidden-units",
            "8",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for chatter in ("absl::InitializeLog", "cuInit", "Unable to initialize backend", "I0000"):
        assert chatter not in result.stderr, result.stderr[-3000:]
    assert result.stdout.count("epoch 1/1") == 1
    # The command line restarted itself with an allocator that reuses freed memory.
    expected = "reuse freed memory" if allocator.has_glibc() else "system"
    assert json.loads((tmp_path / "metrics.json").read_text())["allocator"] == expected
