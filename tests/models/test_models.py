import os
import tempfile

import keras
import numpy as np
import pytest

from keras_unimixer import datasets, models
from keras_unimixer.experiments.scaling import flops_per_example, parameter_counts
from keras_unimixer.layers.mixing import default_block_size
from keras_unimixer.models.config import ENCODER_OPTIONS, MODEL_OPTIONS

SIZES = dict(num_layers=1, num_tokens=4, token_dim=8, embedding_dim=4, hidden_units=(8,))


@pytest.fixture(scope="module")
def data():
    return datasets.make_synthetic(num_examples=600, num_categorical=6, num_numeric=2, seed=1)


def save_and_load(model):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        return keras.saving.load_model(path)


@pytest.mark.parametrize("name", models.model_names())
def test_every_model_trains_saves_and_reloads(name, data):
    model = models.build_model(name, data.features, **SIZES)
    models.compile_ranking(model, ["click"], learning_rate=1e-2)
    features, labels = data.arrays("train")
    targets = labels["click"][:, None]
    history = model.fit(features, targets, batch_size=120, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert 0.0 <= history.history["auc"][-1] <= 1.0
    test_features, _ = data.arrays("test")
    predictions = model.predict(test_features, verbose=0)
    assert predictions.shape == (data.num_examples("test"), 1)
    restored = save_and_load(model)
    np.testing.assert_allclose(restored.predict(test_features, verbose=0), predictions, atol=1e-5)
    assert type(restored) is type(model)
    assert restored.get_config() == model.get_config()


def test_the_authors_design_choices_are_model_options_that_train_and_reload(data):
    model = models.RankingModel(
        data.features,
        mixer="unimixer_lite",
        rank="full",
        block_dropout=0.1,
        mixing_options={
            "normalization": "l2",
            "transpose_tokens": True,
            "normalize_across_blocks": True,
            "basis_coefficients": "raw",
        },
        **SIZES,
    )
    mixing = model.get_layer("encoder").blocks[0].mixing
    assert (mixing.rank, mixing.normalization, mixing.temperature) == ("full", "l2", None)
    assert model.get_layer("encoder").blocks[0].dropout == 0.1
    models.compile_ranking(model, ["click"], learning_rate=1e-2)
    features, labels = data.arrays("train")
    history = model.fit(features, labels["click"][:, None], batch_size=120, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    test_features, _ = data.arrays("test")
    restored = save_and_load(model)
    np.testing.assert_allclose(
        restored.predict(test_features, verbose=0),
        model.predict(test_features, verbose=0),
        atol=1e-5,
    )
    assert restored.get_config() == model.get_config()


def test_multi_task_outputs_one_logit_per_task(data):
    model = models.RankingModel(data.features, tasks=["click", "other"], **SIZES)
    features, _ = data.arrays("test")
    outputs = model.predict(features, verbose=0)
    assert set(outputs) == {"click", "other"}
    assert outputs["click"].shape == (data.num_examples("test"), 1)
    models.compile_ranking(model, ["click", "other"])
    labels = data.arrays("train")[1]["click"][:, None]
    history = model.fit(
        data.arrays("train")[0], {"click": labels, "other": 1 - labels}, epochs=1, verbose=0
    )
    assert "click_auc" in history.history and "other_auc" in history.history


def test_mixer_choices_build_the_documented_architectures(data):
    lite = models.RankingModel(data.features, mixer="unimixer_lite", **SIZES)
    encoder = lite.get_layer("encoder")
    assert encoder.norm == "siamese"
    assert type(encoder.blocks[0].mixing).__name__ == "UniMixingLite"
    rankmixer = models.RankingModel(data.features, mixer="rankmixer", **SIZES)
    encoder = rankmixer.get_layer("encoder")
    assert encoder.norm == "post" and encoder.ffn_activation == "gelu"
    assert encoder.blocks[0].mixing.num_heads == SIZES["num_tokens"]


def test_default_block_size_is_near_sqrt_of_flat_size():
    assert default_block_size(16, 64) == 32  # sqrt(1024) = 32
    assert default_block_size(8, 32) == 16
    assert default_block_size(3, 5) in (3, 5)


def test_rankmixer_needs_token_dim_divisible_by_tokens(data):
    with pytest.raises(ValueError, match="`token_dim`=10 must be a multiple of 4"):
        models.RankingModel(data.features, mixer="rankmixer", num_tokens=4, token_dim=10)


def test_unknown_model_and_tasks(data):
    with pytest.raises(ValueError, match="`model`"):
        models.build_model("xgboost", data.features)
    with pytest.raises(ValueError, match="`mixer`"):
        models.RankingModel(data.features, mixer="mamba")
    with pytest.raises(ValueError, match="`tasks`"):
        models.RankingModel(data.features, tasks=[])


def test_flops_and_parameter_counts_by_hand(data):
    model = models.RankingModel(
        data.features,
        mixer="unimixer",
        num_layers=1,
        num_tokens=4,
        token_dim=8,
        embedding_dim=4,
        block_size=8,
        ffn_multiplier=2,
        hidden_units=(8,),
    )
    num_features, flat_size, block, blocks = 8, 32, 8, 4
    tokenizer = 2 * (num_features * 4) * 8  # 4 chunks of 8 -> 8 dims
    mixing = 2 * flat_size * block + 2 * flat_size * blocks
    ffn = 3 * 2 * 4 * 8 * 16  # SwiGLU: three (D x 2D) matrices per token
    head = 2 * 8 * 8 + 2 * 8 * 1
    assert flops_per_example(model) == tokenizer + mixing + ffn + head
    counts = parameter_counts(model)
    embedding = sum(f.vocabulary_size * 4 for f in data.features if f.kind != "numeric")
    assert counts["embedding"] == embedding
    assert counts["total"] == model.count_params() == counts["embedding"] + counts["dense"]


def test_listwise_model_scores_lists_with_keras_rs_losses_and_round_trips(data):
    import keras_rs

    data.user_feature = "cat_0"
    lists, labels = datasets.make_lists(data, "train", list_size=5, label="click", seed=0)
    assert lists["cat_0"].shape == labels.shape and labels.shape[1] == 5
    padded = labels == datasets.PAD_LABEL
    assert np.all(lists["cat_1"][padded] == 0)  # padding carries no features
    scorer = models.RankingModel(data.features, **SIZES)
    model = models.ListwiseModel(scorer)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras_rs.losses.ListMLELoss(),
        metrics=[keras_rs.metrics.NDCG(k=3, name="ndcg")],
    )
    history = model.fit(lists, labels, batch_size=32, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    scores = model.predict(lists, verbose=0)
    flat = {name: values.reshape((-1,) + values.shape[2:]) for name, values in lists.items()}
    np.testing.assert_allclose(
        scores, scorer.predict(flat, verbose=0).reshape(scores.shape), atol=1e-5
    )
    restored = save_and_load(model)
    np.testing.assert_allclose(restored.predict(lists, verbose=0), scores, atol=1e-5)


@pytest.mark.parametrize("model_class", [models.RankingModel, models.Tower])
def test_configs_saved_with_the_old_head_option_names_still_load(model_class, data):
    # Before commit 0ff50db the head MLP's options were `head_dropout` / `head_batch_norm`.
    model = model_class(data.features, dropout=0.2, batch_norm=True, **SIZES)
    config = model.get_config()
    config["head_dropout"] = config.pop("dropout")
    config["head_batch_norm"] = config.pop("batch_norm")
    restored = model_class.from_config(config)
    assert restored.get_config() == model.get_config()
    features, _ = data.arrays("test")
    restored.set_weights(model.get_weights())
    np.testing.assert_allclose(
        restored.predict(features, verbose=0), model.predict(features, verbose=0), atol=1e-6
    )
    with pytest.raises(TypeError, match="head_dropout"):
        model_class(data.features, head_dropout=0.2, **SIZES)  # new code uses the new names


@pytest.mark.parametrize("model_class", [models.RankingModel, models.Tower])
def test_constructor_arguments_are_explicit_with_the_config_defaults(model_class):
    import inspect

    parameters = inspect.signature(model_class.__init__).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    defaults = models.ModelConfig()
    options = [name for name in parameters if name in MODEL_OPTIONS]
    expected = set(ENCODER_OPTIONS) - {"num_cross_layers"} | {
        "block_size",
        "num_heads",
        "num_basis",
        "rank",
        "temperature",
        "sinkhorn_iterations",
        "mixing_options",
    }
    if model_class is models.Tower:
        expected -= {"heads", "num_experts", "expert_units"}
    assert set(options) == expected
    for name in options:
        default = None if name == "mixing_options" else getattr(defaults, name)
        assert parameters[name].default == default, name
        assert f"{name}: " in model_class.__doc__ or model_class is models.Tower, name


def test_an_option_the_mixer_does_not_read_is_refused_unless_it_is_the_default(data):
    with pytest.raises(ValueError, match=r"'unimixer_lite' does not use \['num_heads'\]"):
        models.RankingModel(data.features, mixer="unimixer_lite", num_heads=2)
    with pytest.raises(TypeError, match="heads"):
        models.Tower(data.features, heads="mmoe")
    model = models.RankingModel(
        data.features, mixer="rankmixer", num_tokens=4, token_dim=8, num_basis=4, name="ranker"
    )
    assert model.name == "ranker" and "num_basis" not in model.get_config()


def test_a_tower_saved_with_the_multitask_options_still_loads(data):
    # Before the arguments were explicit, a Tower's config held `heads`, `num_experts` and
    # `expert_units` (unused by a tower).
    tower = models.Tower(data.features, output_dim=4, **SIZES)
    old = {**tower.get_config(), "heads": "independent", "num_experts": 4, "expert_units": [64]}
    assert models.Tower.from_config(old).get_config() == tower.get_config()
