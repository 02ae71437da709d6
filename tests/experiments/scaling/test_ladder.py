import argparse
import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest

from keras_unimixer import datasets, models
from keras_unimixer.experiments import cli
from keras_unimixer.experiments.cli import scale as scale_command
from keras_unimixer.experiments.scaling import (
    LadderConfig,
    fit_ladder,
    fit_power_law,
    inspect_model,
    log_linear_fit,
    merge_ladders,
    permutation_closeness,
    run_ladder,
)
from keras_unimixer.experiments.scaling.fit import fit_gain_law, fit_gain_trend
from keras_unimixer.experiments.scaling.ladder import (
    _check_same_budget,
    append_row,
    ladder_shape,
    read_rows,
    train_config,
    write_rows,
)
from keras_unimixer.layers import UniMixing
from keras_unimixer.layers.mixing import mixing_layers


def test_power_law_fit_recovers_the_exponent_and_covers_it_with_seed_intervals():
    sizes = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    alpha, scale, _ = log_linear_fit(sizes, 0.5 * sizes**0.12)
    assert alpha == pytest.approx(0.12, abs=1e-9) and scale == pytest.approx(0.5, rel=1e-9)
    rng = np.random.default_rng(0)
    rows = [
        {"dense_params": n, "test_auc": 0.5 * n**0.12 * np.exp(rng.normal(0, 0.003)), "seed": seed}
        for seed in range(4)
        for n in sizes
    ]
    fit = fit_power_law(rows)
    assert fit["alpha_low"] < 0.12 < fit["alpha_high"]
    assert fit["alpha_high"] - fit["alpha_low"] < 0.02
    assert fit["interval"] == "t-interval over 4 seeds"
    with pytest.raises(ValueError, match="at least 2 distinct sizes"):
        log_linear_fit([10, 10], [0.7, 0.71])


@pytest.mark.parametrize(
    "overrides,pattern",
    [
        ({"sizes": ("xs", "huge")}, "`sizes` entry 'huge'"),
        ({"models": ("mamba",)}, "must be one of .* or a baseline"),
        ({"models": ("dnn+no_anneal",)}, "'dnn\\+no_anneal': must be one of"),
        ({"models": ("unimixer+dropout",)}, "ablation must be one of"),
        (
            {"models": ("rankmixer+no_symmetry",)},
            "`mixing_options` does not apply to model .rankmixer.",
        ),
        ({"models": ("unimixer_lite+shared_local",)}, "shared_local applies to 'unimixer'"),
        ({"sizes": ()}, "at least one size"),
        ({"embedding_optimizer": "lamb"}, "`embedding_optimizer` must be one of"),
        ({"embedding_learning_rate": 0.1}, "`embedding_learning_rate` needs"),
    ],
)
def test_bad_ladders_are_rejected(overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        LadderConfig(**overrides)


@pytest.mark.end_to_end
def test_ladder_trains_fits_plots_and_continues(tmp_path):
    config = LadderConfig(
        models=("unimixer", "unimixer+shared_local", "dnn"),
        sizes=("xs", "s"),
        seeds=(0,),
        epochs=1,
        max_examples=1500,
        output=str(tmp_path),
    )
    rows = run_ladder(config, progress=lambda line: None)
    assert len(rows) == 7 and all(0 <= row["test_auc"] <= 1 for row in rows)
    assert [r["model"] for r in rows if r["size"] == "reference"] == ["logistic_regression"]
    params = {(r["model"], r["size"]): r["dense_params"] for r in rows}
    assert params["unimixer", "s"] > params["unimixer", "xs"]
    assert params["unimixer+shared_local", "s"] < params["unimixer", "s"]  # one local matrix
    assert params["dnn", "s"] > params["dnn", "xs"]
    fits = fit_ladder(rows)
    assert {(f["model"], f["against"]) for f in fits if f["law"] == "auc"} == {
        (m, x) for m in config.models for x in ("dense_params", "flops_per_example")
    }
    assert {f["law"] for f in fits} <= {"auc", "gain", "gain_trend"}
    assert len(read_rows(tmp_path / "ladder.csv")) == 7
    again = run_ladder(config, progress=lambda line: pytest.fail(f"retrained: {line}"))
    assert again == read_rows(tmp_path / "ladder.csv")
    # The command draws the figures from the same (already complete) ladder.
    assert (
        cli.main(
            [
                "scale",
                "--models",
                "unimixer,unimixer+shared_local,dnn",
                "--sizes",
                "xs,s",
                "--seeds",
                "0",
                "--epochs",
                "1",
                "--max-examples",
                "1500",
                "--output",
                str(tmp_path),
            ]
        )
        == 0
    )
    for figure in ("scaling_params.png", "scaling_flops.png", "learning_curves.png"):
        assert (tmp_path / figure).stat().st_size > 10_000
    with pytest.raises(ValueError, match="other settings"):
        run_ladder(LadderConfig(**{**config.__dict__, "epochs": 2}))
    ablations = json.loads((tmp_path / "ablations.json").read_text())
    assert [a["model"] for a in ablations] == ["unimixer", "unimixer+shared_local", "dnn"]


def test_ladder_rows_record_the_depth_a_variant_sets():
    assert ladder_shape("rankmixer", "xs") == {"num_layers": 1, "num_tokens": 4, "token_dim": 16}
    assert ladder_shape("rankmixer+depth8", "xs")["num_layers"] == 8
    assert ladder_shape("unimixer_lite+depth4", "s") == {
        "num_layers": 4,
        "num_tokens": 8,
        "token_dim": 16,
    }
    assert ladder_shape("logistic_regression", "reference")["num_layers"] == 0
    config = LadderConfig(models=("rankmixer+depth8",), sizes=("xs", "s"))
    assert train_config(config, "rankmixer+depth8", "xs", seed=0).num_layers == 8


def test_mlp_baselines_climb_the_ladder_with_the_mixers_width_and_depth():
    config = LadderConfig(models=("dnn", "dcnv2", "rankmixer"), sizes=("xs", "l"))
    dnn = train_config(config, "dnn", "l", seed=0)
    assert dnn.model == "dnn" and dnn.hidden_units == (512, 512, 512)  # l: 3 x 8 tokens x 64
    dcnv2 = train_config(config, "dcnv2", "xs", seed=0)
    assert dcnv2.hidden_units == (64,) and dcnv2.num_cross_layers == 1
    assert train_config(config, "rankmixer", "l", seed=0).num_tokens == 8


def test_gain_law_is_fitted_on_the_gain_over_the_reference():
    sizes = np.array([1e5, 3e5, 1e6, 3e6, 1e7])
    reference = {0: 0.70, 1: 0.71}
    rows = [
        {"dense_params": n, "seed": seed, "test_auc": reference[seed] + 0.004 * (n / 1e6) ** 0.13}
        for seed in reference
        for n in sizes
    ]
    rows.append({"dense_params": 1e4, "seed": 0, "test_auc": 0.69})  # below the reference
    fit = fit_gain_law(rows, reference)
    assert fit["alpha"] == pytest.approx(0.13, abs=1e-6)
    assert fit["a"] == pytest.approx(0.004, rel=1e-6)  # N in millions, as the paper
    assert fit["excluded"] == 1
    assert fit_gain_law(rows[:1], reference) is None


def test_gain_trend_measures_a_gap_that_closes_with_size_where_no_gain_is_positive():
    sizes = [1e4, 1e5, 1e6]
    slopes = {0: 0.004, 1: 0.006}  # gain per tenfold of N, per seed
    reference = {0: 0.75, 1: 0.76}
    rows = [
        {
            "dense_params": n,
            "seed": seed,
            "test_auc": reference[seed] - 0.02 + slope * np.log10(n / 1e4),
        }
        for seed, slope in slopes.items()
        for n in sizes
    ]
    assert fit_gain_law(rows, reference) is None  # every gain is negative: no power law
    trend = fit_gain_trend(rows, reference)
    assert trend["slope_per_decade"] == pytest.approx(0.005, abs=1e-9)
    # t-interval over the 2 per-seed slopes: 0.005 +- 12.706 * std(0.004, 0.006) / sqrt(2)
    half_width = 12.706 * np.std([0.004, 0.006], ddof=1) / np.sqrt(2)
    assert trend["slope_low"] == pytest.approx(0.005 - half_width, rel=1e-6)
    assert trend["slope_high"] == pytest.approx(0.005 + half_width, rel=1e-6)
    assert trend["mean_gain_at_largest"] == pytest.approx(-0.02 + 2 * 0.005, abs=1e-9)
    assert trend["interval"] == "t-interval over 2 seeds" and trend["num_runs"] == 6
    # A run's own-rows reference is preferred to the seed's.
    own = [{**row, "train_rows": 7} for row in rows]
    shifted = fit_gain_trend(own, {**reference, (0, 7): 0.70, (1, 7): 0.71})
    assert shifted["mean_gain_at_largest"] == pytest.approx(0.05 - 0.02 + 0.01, abs=1e-9)
    assert fit_gain_trend(rows[:1], reference) is None
    trends = [f for f in fit_ladder(_with_references(rows, reference)) if f["law"] == "gain_trend"]
    assert {f["against"] for f in trends} == {"dense_params", "flops_per_example"}


def _with_references(rows, reference):
    runs = [
        {
            **row,
            "model": "rankmixer",
            "size": str(row["dense_params"]),
            "flops_per_example": 2 * row["dense_params"],
        }
        for row in rows
    ]
    references = [
        {"model": "dnn", "size": "reference", "seed": seed, "test_auc": auc, "train_rows": 1}
        for seed, auc in reference.items()
    ]
    return runs + references


def test_proportional_budget_gives_bigger_models_more_rows():
    config = LadderConfig(
        models=("rankmixer",),
        sizes=("xs", "m"),
        seeds=(0,),
        budget="proportional",
        rows_per_param=2.0,
        min_examples=1000,
        max_examples=50_000,
        dataset="synthetic",
    )
    features = datasets.make_synthetic(num_examples=500).features
    small = train_config(config, "rankmixer", "xs", 0, features).max_examples
    large = train_config(config, "rankmixer", "m", 0, features).max_examples
    assert 1000 <= small < large <= 50_000
    with pytest.raises(ValueError, match="needs `max_examples`"):
        LadderConfig(budget="proportional")


def test_inspect_reports_a_sharp_global_matrix_as_a_permutation(tmp_path):
    data = datasets.make_synthetic(num_examples=300)
    model = models.RankingModel(
        data.features, mixer="unimixer", num_layers=2, num_tokens=4, token_dim=8, block_size=4
    )
    layers = mixing_layers(model)
    assert len(layers) == 2 and all(isinstance(layer, UniMixing) for layer in layers)
    first = layers[0]
    permutation = np.eye(first.num_blocks)[::-1]  # symmetric, as the layer constrains W_G
    first.global_kernel.assign(10.0 * permutation)
    first.temperature_variable.assign(0.05)
    path = tmp_path / "model.keras"
    model.save(path)
    stats = list(inspect_model(path, tmp_path / "inspect").values())  # in layer order
    sharp = stats[0]["global"]
    assert sharp["mean_row_max"] > 0.99 and sharp["argmax_is_permutation"]
    assert stats[0]["temperature"] == pytest.approx(0.05)
    assert stats[1]["global"]["mean_row_max"] < sharp["mean_row_max"]
    assert (tmp_path / "inspect" / stats[0]["image"]).stat().st_size > 5_000
    uniform = permutation_closeness(np.full((4, 4), 0.25))
    assert uniform["mean_row_max"] == 0.25
    assert uniform["mean_row_entropy"] == pytest.approx(np.log(4))
    with pytest.raises(ValueError, match="no UniMixing"):
        inspect_model(
            models.RankingModel(data.features, mixer="fm", num_tokens=4, token_dim=8),
            tmp_path / "none",
        )
    keras.utils.clear_session()


def test_mixed_precision_reaches_every_run_and_older_ladders_continue(tmp_path):
    # One size is a rung to add to a ladder (e.g. on a GPU); no curve is fitted through it.
    config = LadderConfig(models=("rankmixer",), sizes=("xs",), mixed_precision=True)
    assert (
        fit_ladder(
            [
                {
                    "model": "rankmixer",
                    "size": "xs",
                    "seed": 0,
                    "test_auc": 0.7,
                    "dense_params": 10,
                    "flops_per_example": 20,
                }
            ]
        )
        == []
    )
    assert train_config(config, "rankmixer", "xs", seed=0).mixed_precision
    assert train_config(config, "logistic_regression", "reference", seed=0).mixed_precision
    assert not train_config(LadderConfig(), "rankmixer", "xs", seed=0).mixed_precision
    # A ladder saved before the setting existed held its default (fp32): it may continue as
    # fp32, not as bf16.
    saved = dataclasses.asdict(LadderConfig(output=str(tmp_path)))
    del saved["mixed_precision"]
    (tmp_path / "ladder_config.json").write_text(json.dumps(saved))
    _check_same_budget(LadderConfig(output=str(tmp_path)), tmp_path / "ladder_config.json")
    with pytest.raises(ValueError, match="mixed_precision"):
        _check_same_budget(
            LadderConfig(output=str(tmp_path), mixed_precision=True),
            tmp_path / "ladder_config.json",
        )


def test_row_sparse_tables_reach_every_run_and_older_ladders_continue_dense(tmp_path):
    config = LadderConfig(
        models=("rankmixer", "dnn"),
        embedding_optimizer="rowwise_adagrad",
        embedding_learning_rate=0.05,
    )
    for name, size in (("rankmixer", "m"), ("dnn", "xs"), ("logistic_regression", "reference")):
        run = train_config(config, name, size, seed=0)
        assert (run.embedding_optimizer, run.embedding_learning_rate) == ("rowwise_adagrad", 0.05)
    dense = train_config(LadderConfig(), "rankmixer", "m", seed=0)
    assert (dense.embedding_optimizer, dense.embedding_learning_rate) == (None, None)
    # A ladder saved before the settings existed trained its tables with Adam: it continues
    # densely and refuses to go on with row-sparse tables.
    saved = dataclasses.asdict(LadderConfig(output=str(tmp_path)))
    del saved["embedding_optimizer"], saved["embedding_learning_rate"]
    (tmp_path / "ladder_config.json").write_text(json.dumps(saved))
    _check_same_budget(LadderConfig(output=str(tmp_path)), tmp_path / "ladder_config.json")
    with pytest.raises(ValueError, match="embedding_optimizer"):
        _check_same_budget(
            LadderConfig(output=str(tmp_path), embedding_optimizer="sgd"),
            tmp_path / "ladder_config.json",
        )
    parser = argparse.ArgumentParser()
    scale_command.add_arguments(parser)
    args = parser.parse_args(
        ["--embedding-optimizer", "rowwise_adagrad", "--embedding-learning-rate", "0.05"]
    )
    assert (args.embedding_optimizer, args.embedding_learning_rate) == ("rowwise_adagrad", 0.05)


def test_learning_curves_are_drawn_against_examples_where_runs_have_them(tmp_path):
    from keras_unimixer.experiments.scaling.plots import plot_learning_curves

    def write(name, history):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "metrics.json").write_text(json.dumps({"history": history}))

    write(
        "rankmixer_xs_seed0",
        {"val_auc": [0.7], "curve_examples": [100, 200], "curve_val_auc": [0.6, 0.7]},
    )
    write("rankmixer_s_seed0", {"val_auc": [0.71]})  # no curve: left out of this figure
    assert plot_learning_curves(tmp_path, tmp_path / "curves.png").stat().st_size > 10_000
    assert plot_learning_curves(tmp_path, tmp_path / "none.png", seed=1) is None
    with pytest.raises(ValueError, match="every_steps"):
        from keras_unimixer.callbacks import ValidationCurve

        ValidationCurve(None, every_steps=0, batch_size=8, history={}, steps_per_epoch=4)


@pytest.mark.end_to_end
def test_proportional_runs_gain_over_a_reference_on_their_own_rows(tmp_path):
    config = LadderConfig(
        models=("rankmixer",),
        sizes=("xs", "s"),
        seeds=(0,),
        epochs=1,
        budget="proportional",
        rows_per_param=0.1,
        min_examples=1500,
        max_examples=3000,
        dataset="synthetic",
        output=str(tmp_path),
    )
    rows = run_ladder(config, progress=lambda line: None)
    runs = {r["size"]: r for r in rows if r["size"] != "reference"}
    assert runs["xs"]["train_rows"] < runs["s"]["train_rows"]
    references = sorted(r["train_rows"] for r in rows if r["size"] == "reference")
    # One on the ladder's largest rows (s's too, here), one on xs's rows: no two alike.
    assert references == sorted({runs["xs"]["train_rows"], runs["s"]["train_rows"]})
    # A ladder finished without xs's (an older one) gets it when it is run again.
    table = tmp_path / "ladder.csv"
    kept = [
        r
        for r in read_rows(table)
        if r["size"] != "reference" or r["train_rows"] != runs["xs"]["train_rows"]
    ]
    table.unlink()
    for row in kept:
        append_row(table, row)
    xs_rows = runs["xs"]["train_rows"]
    shutil.rmtree(tmp_path / "runs" / f"reference_logistic_regression_seed0_rows{xs_rows}")
    trained = []
    again = run_ladder(config, progress=trained.append)
    assert len(trained) == 1 and trained[0].startswith("logistic_regression")
    assert f"{runs['xs']['train_rows']} rows" in trained[0]
    assert len(again) == len(rows)


def test_gain_prefers_the_reference_trained_on_the_runs_rows():
    sizes = np.array([1e5, 1e6, 1e7])
    rows = [
        {
            "dense_params": n,
            "seed": 0,
            "train_rows": int(n),
            "test_auc": 0.6 + 0.01 * (n / 1e6) ** 0.2,
        }
        for n in sizes
    ]
    own = {(0, int(n)): 0.6 for n in sizes}
    fit = fit_gain_law(rows, {0: 0.9, **own})  # the seed's reference alone: no positive gain
    assert fit["alpha"] == pytest.approx(0.2, abs=1e-6) and fit["excluded"] == 0
    assert fit_gain_law(rows, {0: 0.9}) is None


def test_benchmark_protocol_trains_the_ladders_sizes_under_the_benchmarks_settings():
    config = LadderConfig(
        dataset="frappe_x1", protocol="benchmark", epochs=7, models=("rankmixer",)
    )
    assert (config.batch_size, config.embedding_dim, config.patience) == (4096, 10, 2)
    for name, size in (("rankmixer", "l"), ("dnn", "xs"), ("logistic_regression", "reference")):
        run = train_config(config, name, size, seed=0)
        assert (run.embedding_l2, run.embedding_init_stddev) == (0.05, 1e-4)
        assert run.reduce_lr_on_plateau and run.epochs == 7 and run.batch_size == 4096
    assert train_config(config, "rankmixer", "l", seed=0).token_dim == 64  # the ladder's size
    assert train_config(config, "dnn", "xs", seed=0).hidden_units == (64,)
    plain = train_config(LadderConfig(dataset="frappe_x1"), "rankmixer", "l", seed=0)
    assert (plain.embedding_l2, plain.reduce_lr_on_plateau, plain.batch_size) == (0.0, False, 512)
    with pytest.raises(ValueError, match="'synthetic' has no benchmark protocol.*frappe_x1"):
        LadderConfig(dataset="synthetic", protocol="benchmark")
    with pytest.raises(ValueError, match="`batch_size` 8: the benchmark protocol sets it to 4096"):
        LadderConfig(dataset="frappe_x1", protocol="benchmark", batch_size=8)
    with pytest.raises(ValueError, match="`protocol` must be one of"):
        LadderConfig(protocol="bars")
    with pytest.raises(ValueError, match="--batch-size: the benchmark protocol"):
        cli.main(
            ["scale", "--dataset", "frappe_x1", "--protocol", "benchmark", "--batch-size", "8"]
        )


@pytest.mark.end_to_end
def test_ladders_on_data_with_users_record_and_fit_uauc(tmp_path):
    config = LadderConfig(
        dataset="movielens",
        models=("rankmixer",),
        sizes=("xs", "s"),
        seeds=(0,),
        epochs=1,
        max_examples=2000,
        reference=None,
        output=str(tmp_path),
    )
    rows = run_ladder(config, progress=lambda line: None)
    assert all(0 < row["test_uauc"] < 1 and 0 < row["test_gauc"] < 1 for row in rows)
    assert all(row["test_uauc"] != row["test_auc"] for row in rows)
    uauc = [f for f in fit_ladder(rows) if f["law"] == "uauc" and f["against"] == "dense_params"]
    expected = fit_power_law(rows, y_key="test_uauc")
    assert len(uauc) == 1 and uauc[0]["alpha"] == pytest.approx(expected["alpha"])


def test_a_row_with_a_new_column_extends_the_ladder_csv(tmp_path):
    path = tmp_path / "ladder.csv"
    append_row(path, {"model": "dnn", "size": "xs", "seed": 0, "test_auc": 0.7})
    append_row(path, {"model": "dnn", "size": "s", "seed": 0, "test_auc": 0.8, "test_uauc": 0.6})
    append_row(path, {"model": "dnn", "size": "m", "seed": 0, "test_auc": 0.9})
    rows = read_rows(path)
    assert [(r["size"], r["test_auc"]) for r in rows] == [("xs", 0.7), ("s", 0.8), ("m", 0.9)]
    assert np.isnan(rows[0]["test_uauc"]) and rows[1]["test_uauc"] == 0.6
    assert np.isnan(rows[2]["test_uauc"])
    # A model whose runs lack UAUC somewhere gets no UAUC law.
    rows = [{**r, "dense_params": 10**i, "flops_per_example": 10**i} for i, r in enumerate(rows)]
    assert {f["law"] for f in fit_ladder(rows)} == {"auc"}


@pytest.mark.end_to_end
def test_a_run_interrupted_after_its_checkpoint_or_before_any_continues(tmp_path):
    config = LadderConfig(
        models=("rankmixer",),
        sizes=("xs",),
        seeds=(0,),
        epochs=1,
        max_examples=1500,
        reference=None,
        output=str(tmp_path),
    )
    (finished,) = run_ladder(config, progress=lambda line: None)
    table, folder = tmp_path / "ladder.csv", tmp_path / "runs" / "rankmixer_xs_seed0"
    # Killed after its last checkpoint, before its row was written: resumed, not retrained.
    table.unlink()
    (resumed,) = run_ladder(config, progress=lambda line: None)
    assert resumed["test_auc"] == finished["test_auc"]
    # Killed before any whole checkpoint: trained again in the same folder.
    table.unlink()
    shutil.rmtree(folder / "checkpoint")
    (again,) = run_ladder(config, progress=lambda line: None)
    assert 0 < again["test_auc"] < 1 and again["best_epoch"] == 1
    assert (folder / "checkpoint").is_dir()


@pytest.mark.end_to_end
def test_ladders_run_apart_merge_into_one_and_refuse_to_mix_rules(tmp_path):
    common = dict(models=("rankmixer",), sizes=("xs", "s"), epochs=1, max_examples=1500)
    for seed in (0, 1):
        run_ladder(
            LadderConfig(
                **common,
                seeds=(seed,),
                output=str(tmp_path / f"seed{seed}"),
                data_dir=str(tmp_path / f"elsewhere{seed}"),
            ),
            progress=lambda line: None,
        )
    sources = [str(tmp_path / "seed0"), str(tmp_path / "seed1")]
    assert cli.main(["scale", "--merge", ",".join(sources), "--output", str(tmp_path / "all")]) == 0
    merged = read_rows(tmp_path / "all" / "ladder.csv")
    apart = read_rows(tmp_path / "seed0" / "ladder.csv") + read_rows(
        tmp_path / "seed1" / "ladder.csv"
    )
    assert merged == apart and len(merged) == 6  # 2 sizes and a reference per seed
    fits = json.loads((tmp_path / "all" / "fits.json").read_text())
    (auc,) = [f for f in fits if f["law"] == "auc" and f["against"] == "dense_params"]
    assert auc["interval"] == "t-interval over 2 seeds" and auc["alpha"] == pytest.approx(
        fit_power_law([r for r in merged if r["size"] != "reference"])["alpha"]
    )
    assert len(list((tmp_path / "all" / "runs").glob("*/metrics.json"))) == 6
    assert not list((tmp_path / "all" / "runs").glob("*/model.keras"))
    # The merged ladder continues like any other: nothing is retrained.
    again = run_ladder(
        LadderConfig(**common, seeds=(0, 1), output=str(tmp_path / "all")),
        progress=lambda line: pytest.fail(f"retrained: {line}"),
    )
    assert again == merged
    with pytest.raises(ValueError, match="already holds a ladder"):
        merge_ladders(sources, tmp_path / "all")
    with pytest.raises(ValueError, match=r"'logistic_regression', 'reference', 0\).*in both"):
        merge_ladders([sources[0], sources[0]], tmp_path / "twice")
    seed1 = read_rows(tmp_path / "seed1" / "ladder.csv")

    def ran_otherwise(name, rows=seed1, **settings):
        # Ladder seed1 as if run under other settings (merging reads only these two files).
        target = tmp_path / name
        shutil.copytree(tmp_path / "seed1", target)
        path = target / "ladder_config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **settings}))
        write_rows(target / "ladder.csv", rows)
        return target

    with pytest.raises(ValueError, match=r"other settings.*'epochs': \(1, 2\)"):
        merge_ladders([sources[0], ran_otherwise("other", epochs=2)], tmp_path / "mixed")
    with pytest.raises(ValueError, match="two or more"):
        merge_ladders(sources[:1], tmp_path / "one")
    # A ladder without a reference joins one with it; two different references do not mix.
    plain = [row for row in seed1 if row["size"] != "reference"]
    joined = merge_ladders(
        [sources[0], ran_otherwise("plain", plain, reference=None)], tmp_path / "joined"
    )
    assert {r["model"] for r in joined if r["seed"] == 1} == {"rankmixer"}
    saved = json.loads((tmp_path / "joined" / "ladder_config.json").read_text())
    assert saved["reference"] == "logistic_regression" and saved["data_dir"] is None
    with pytest.raises(ValueError, match=r"different references \['dnn', 'logistic_regression'\]"):
        merge_ladders([sources[0], ran_otherwise("dnn", reference="dnn")], tmp_path / "refs")
