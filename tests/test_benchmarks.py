"""Benchmarks write committed results only when asked (`--write-results`)."""

import importlib
import re
import shlex
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import results_files  # noqa: E402


def test_results_go_to_the_scratch_folder_unless_asked():
    scratch = results_files.results_path("probe/x.md", write_results=False)
    committed = results_files.results_path("probe/x.md", write_results=True)
    assert scratch == BENCHMARKS.parent / "runs" / "benchmarks" / "probe" / "x.md"
    assert committed == BENCHMARKS / "results" / "probe" / "x.md"
    committed.parent.rmdir()  # made by the call; nothing was written in it


def test_no_benchmark_writes_to_the_results_folder_itself():
    writes_results = re.compile(r"""["']results["']\s*/|/\s*["']results["']""")
    offenders = [
        path.name
        for path in BENCHMARKS.glob("*.py")
        if path.name != "results_files.py" and writes_results.search(path.read_text())
    ]
    assert offenders == []


@pytest.mark.parametrize("script", sorted(path.stem for path in BENCHMARKS.glob("*.py")), ids=str)
def test_every_benchmark_script_imports(script):
    # A benchmark runs by hand, rarely; an import that a refactor broke must fail here instead.
    module = importlib.import_module(script)
    assert callable(getattr(module, "main", None)) or script == "results_files"


def test_the_search_ranks_settings_by_mean_validation_over_seeds():
    protocol_runs = importlib.import_module("protocol_runs")

    def row(settings, seed, validation):
        return {"model": "m", "settings": settings, "seed": seed, "validation": {"auc": validation}}

    # `a` has the single best run, `b` the better mean: the mean decides.
    rows = [row({"x": "a"}, 1, 0.90), row({"x": "a"}, 2, 0.70), row({"x": "b"}, 1, 0.85)]
    rows.append(row({"x": "b"}, 2, 0.84))
    assert protocol_runs.best_by_mean_validation(rows) == {"m": (pytest.approx(0.845), {"x": "b"})}


def test_an_ablation_subset_keeps_each_models_base_and_refuses_unknown_labels():
    frappe_x1 = importlib.import_module("frappe_x1")
    chosen = frappe_x1.selected_ablations("random local start,full-rank W_G")
    assert list(chosen) == ["unimixer_lite"]
    assert list(chosen["unimixer_lite"]) == ["base", "random local start", "full-rank W_G"]
    assert chosen["unimixer_lite"]["full-rank W_G"] == {"rank": "full"}
    assert frappe_x1.selected_ablations(None) is frappe_x1.ABLATIONS
    with pytest.raises(SystemExit, match="unknown --variants \\['nope'\\]; valid: .*base"):
        frappe_x1.selected_ablations("nope")


def test_the_recorded_command_reruns_variant_labels_with_spaces_and_drops_the_time_budget():
    frappe_x1 = importlib.import_module("frappe_x1")
    argv = ["ablation", "--variants", "random local start,AdamW + clip", "--time-budget", "0"]
    command = frappe_x1.reproducing_command(argv)
    assert (
        command
        == "python benchmarks/frappe_x1.py ablation --variants 'random local start,AdamW + clip'"
    )
    assert shlex.split(command)[2:] == argv[:3]


def test_the_movielens_protocol_holds_each_mixers_best_setting_of_the_committed_search():
    # The defaults of `train --dataset movielens --model M` are the search's choice on
    # validation AUC, not numbers typed in by hand.
    import json

    from keras_unimixer.experiments.protocols import MODEL_PROTOCOLS, training_protocol

    protocol_runs = importlib.import_module("protocol_runs")
    lines = (BENCHMARKS / "results" / "movielens_search_jax.jsonl").read_text().splitlines()
    best = protocol_runs.best_by_mean_validation([json.loads(line) for line in lines])
    assert set(best) == set(MODEL_PROTOCOLS["movielens"]) and len(best) >= 2
    for model, (_, settings) in best.items():
        assert MODEL_PROTOCOLS["movielens"][model] == {**training_protocol("movielens"), **settings}


def test_a_failed_run_is_recorded_with_its_exception_line():
    protocol_runs = importlib.import_module("protocol_runs")
    stderr = "Traceback (most recent call last):\n  File x\nValueError: `token_dim`=16 bad.\n\n"
    assert protocol_runs.last_error_line(stderr) == "ValueError: `token_dim`=16 bad."
    assert protocol_runs.last_error_line("killed\n") == "killed"


def test_table_vocabulary_keeps_the_median_process_and_the_largest_peak():
    table_vocabulary = importlib.import_module("table_vocabulary")
    runs = [
        {"examples_per_second": 900.0, "step_ms": 4.5, "peak_rss_mib": 3000.0},
        {"examples_per_second": 1100.0, "step_ms": 3.7, "peak_rss_mib": 3100.0},
        {"examples_per_second": 1000.0, "step_ms": 4.1, "peak_rss_mib": 2900.0},
    ]
    summary = table_vocabulary.median_run(runs)
    assert summary["examples_per_second"] == 1000.0 and summary["step_ms"] == 4.1
    assert summary["peak_rss_mib"] == 3100.0
    assert summary["examples_per_second_runs"] == [900.0, 1100.0, 1000.0]
    assert runs[2]["peak_rss_mib"] == 2900.0  # the inputs are left as they were


def test_table_vocabulary_pairs_each_round_with_the_smallest_vocabulary():
    table_vocabulary = importlib.import_module("table_vocabulary")
    smallest = {"examples_per_second_runs": [1000.0, 2000.0, 1500.0]}
    large = {"examples_per_second_runs": [800.0, 1800.0, 600.0]}
    assert table_vocabulary.paired_ratios(large, smallest) == [0.8, 0.9, 0.4]
    assert table_vocabulary._paired([0.8, 0.9, 0.4]) == "0.80x (0.40-0.90)"


def test_table_vocabulary_sets_each_cells_allocator():
    table_vocabulary = importlib.import_module("table_vocabulary")
    from keras_unimixer.utils import allocator

    assert table_vocabulary.ALLOCATOR_VARIABLE == allocator.ALLOCATOR_VARIABLE
    found = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "PATH": "/bin"}
    for choice in ("system", "reuse"):
        cell = table_vocabulary.cell_environment("jax", choice, found)
        assert "GLIBC_TUNABLES" not in cell  # a value of its own would stop the restart
        assert cell[allocator.ALLOCATOR_VARIABLE] == choice
        assert cell["KERAS_BACKEND"] == "jax" and cell["PATH"] == "/bin"
    assert found["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"  # the caller's is unchanged
    with pytest.raises(ValueError, match="'huge' is not one of"):
        table_vocabulary.cell_environment("jax", "huge", found)


def test_table_vocabulary_compares_within_backend_and_allocator():
    table_vocabulary = importlib.import_module("table_vocabulary")
    results = [
        {"backend": b, "allocator": a, "buckets": n}
        for b in ("jax", "tensorflow")
        for a in ("system", "reuse")
        for n in (100, 10)
    ]
    large = {"backend": "jax", "allocator": "reuse", "buckets": 100}
    assert table_vocabulary.smallest_vocabulary(large, results) == {**large, "buckets": 10}


def test_table_vocabulary_refuses_an_unknown_allocator(capsys):
    table_vocabulary = importlib.import_module("table_vocabulary")
    with pytest.raises(SystemExit):
        table_vocabulary.main(["--allocators", "system,huge"])
    assert "--allocators: ['huge'] not among ['system', 'reuse']" in capsys.readouterr().err


def test_table_vocabulary_refuses_zero_rounds(capsys):
    table_vocabulary = importlib.import_module("table_vocabulary")
    with pytest.raises(SystemExit):
        table_vocabulary.main(["--rounds", "0"])
    assert "--rounds must be at least 1, got 0" in capsys.readouterr().err


def test_table_vocabulary_times_the_row_update_of_each_rule():
    table_vocabulary = importlib.import_module("table_vocabulary")
    for rule in ("sgd", "rowwise_adagrad", "adam"):
        milliseconds = table_vocabulary.row_update_ms(50, 8, rule, updates=2)
        assert isinstance(milliseconds, float) and 0 < milliseconds < 10_000


def test_frappe_table_results_name_keeps_the_full_table_apart():
    frappe_x1 = importlib.import_module("frappe_x1")
    assert frappe_x1.table_results_name(None, "jax") == "frappe_x1_jax.md"
    assert frappe_x1.table_results_name("frappe_x1_more.md", "jax") == "frappe_x1_more.md"
    for bad in ("../frappe_x1.md", "table.csv"):
        with pytest.raises(SystemExit, match="--results-name must be a file name"):
            frappe_x1.table_results_name(bad, "jax")
