from pathlib import Path

import keras
import numpy as np
import pytest

from keras_unimixer import layers
from keras_unimixer.testing import assert_gradients_reach_all_weights, check_layer, random_tokens

SHAPE = (3, 4, 8)

MIXERS = {
    "rankmixer": lambda: layers.TokenMixing(num_heads=4),
    "unimixer": lambda: layers.UniMixing(block_size=8),
    "unimixer_lite": lambda: layers.UniMixingLite(block_size=4, num_basis=2, rank=2),
    "attention": lambda: layers.AttentionMixing(num_heads=2),
    "fm": lambda: layers.FMMixing(),
}


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("mixer", ["unimixer", "rankmixer"])
def test_block_standard_checks(norm, mixer):
    check_layer(
        lambda: layers.UniMixerBlock(MIXERS[mixer](), ffn_multiplier=2, norm=norm),
        SHAPE,
        expensive=(mixer, norm) == ("unimixer", "pre"),  # fit and .keras once per class
    )


ENCODER_CASES = [(mixer, "siamese") for mixer in sorted(MIXERS)] + [
    ("unimixer", "post"),
    ("unimixer_lite", "pre"),
    ("rankmixer", "post"),
]


@pytest.mark.parametrize("mixer,norm", ENCODER_CASES)
def test_encoder_standard_checks(mixer, norm):
    check_layer(
        lambda: layers.UniMixerEncoder(
            num_layers=2, mixing=MIXERS[mixer](), ffn_multiplier=2, norm=norm
        ),
        SHAPE,
        expensive=(mixer, norm) == ("unimixer_lite", "siamese"),  # fit and .keras once per class
    )


def test_block_scope_siamese_encoder_standard_checks():
    check_layer(
        lambda: layers.UniMixerEncoder(
            num_layers=2,
            mixing=MIXERS["unimixer_lite"](),
            ffn_multiplier=2,
            norm="siamese",
            siamese_scope="block",
        ),
        SHAPE,
        expensive=False,
    )


def test_encoder_blocks_have_independent_mixing_weights():
    encoder = layers.UniMixerEncoder(num_layers=3, mixing=layers.UniMixing(block_size=8))
    encoder.build(SHAPE)
    kernels = [block.mixing.global_kernel for block in encoder.blocks]
    assert len({id(kernel) for kernel in kernels}) == 3
    assert len({kernel.path for kernel in kernels}) == 3
    values = [keras.ops.convert_to_numpy(k) for k in kernels]
    assert not np.allclose(values[0], values[1])


def rms_norm(x, scale, epsilon=1e-6):
    return x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + epsilon) * scale


def apply(layer, x):
    """A layer on float64 NumPy values (computed in float32)."""
    return keras.ops.convert_to_numpy(layer(x.astype("float32"))).astype("float64")


def scale(norm_layer):
    return keras.ops.convert_to_numpy(norm_layer.scale).astype("float64")


def randomize_norm_scales(encoder):
    """Non-trivial norm scales, so that a swapped norm would show."""
    rng = np.random.default_rng(3)
    for weight in [w for w in encoder.weights if w.name == "scale"]:
        weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))


def test_siamese_encoder_matches_a_numpy_reference():
    encoder = layers.UniMixerEncoder(
        num_layers=2, mixing=layers.UniMixing(block_size=8), ffn_multiplier=2, norm="siamese"
    )
    inputs = random_tokens(SHAPE)
    encoder.build(SHAPE)
    randomize_norm_scales(encoder)
    outputs = keras.ops.convert_to_numpy(encoder(inputs))

    post, pre = inputs.astype("float64"), inputs.astype("float64")
    for block in encoder.blocks:
        for sublayer, name in ((block.mixing, "mixing"), (block.ffn, "ffn")):
            stream_norm = getattr(block, f"{name}_stream_norm")
            output_norm = getattr(block, f"{name}_norm")
            branch = apply(sublayer, post + rms_norm(pre, scale(stream_norm)))
            post = rms_norm(post + branch, scale(output_norm))
            pre = pre + branch
    expected = post + rms_norm(pre, scale(encoder.output_norm))
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_pre_and_post_norm_blocks_match_their_formulas(norm):
    block = layers.UniMixerBlock(layers.TokenMixing(num_heads=4), ffn_multiplier=2, norm=norm)
    inputs = random_tokens(SHAPE)
    outputs = keras.ops.convert_to_numpy(block(inputs))
    mix = lambda x: keras.ops.convert_to_numpy(block.mixing(x))  # noqa: E731
    ffn = lambda x: keras.ops.convert_to_numpy(block.ffn(x))  # noqa: E731
    mixing_norm = lambda x: keras.ops.convert_to_numpy(block.mixing_norm(x))  # noqa: E731
    ffn_norm = lambda x: keras.ops.convert_to_numpy(block.ffn_norm(x))  # noqa: E731
    if norm == "pre":
        hidden = inputs + mix(mixing_norm(inputs))
        expected = hidden + ffn(ffn_norm(hidden))
    else:
        hidden = mixing_norm(inputs + mix(inputs))
        expected = ffn_norm(hidden + ffn(hidden))
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)


def test_siamese_block_returns_two_streams():
    block = layers.UniMixerBlock(layers.UniMixing(block_size=8), norm="siamese")
    post, pre = block(random_tokens(SHAPE))
    assert tuple(post.shape) == SHAPE and tuple(pre.shape) == SHAPE
    rms = np.sqrt(np.mean(keras.ops.convert_to_numpy(post) ** 2, axis=-1))
    np.testing.assert_allclose(rms, 1.0, atol=1e-3)  # the post-norm stream is normalized


def test_layernorm_option():
    encoder = layers.UniMixerEncoder(
        num_layers=1, mixing=layers.FMMixing(), norm="pre", norm_type="layer"
    )
    encoder.build(SHAPE)
    assert isinstance(encoder.output_norm, keras.layers.LayerNormalization)


def test_encoder_trains_under_fit_with_a_head():
    inputs = keras.Input(shape=SHAPE[1:])
    encoded = layers.UniMixerEncoder(num_layers=2, mixing=layers.UniMixingLite(block_size=4))(
        inputs
    )
    logit = keras.layers.Dense(1)(keras.ops.mean(encoded, axis=1))
    model = keras.Model(inputs, logit)
    x = random_tokens((64,) + SHAPE[1:])
    y = (x[:, 0, 0] * x[:, 1, 1] > 0).astype("float32")[:, None]
    losses = assert_gradients_reach_all_weights(model, x, y, steps=30)
    assert losses[-1] < losses[0]


def test_token_mixing_with_heads_not_equal_tokens_is_rejected_in_a_residual_stack():
    encoder = layers.UniMixerEncoder(num_layers=1, mixing=layers.TokenMixing(num_heads=2))
    with pytest.raises(ValueError, match="num_heads == num_tokens"):
        encoder.build(SHAPE)


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"num_layers": 0}, "num_layers"),
        ({"num_layers": 1, "norm": "batch"}, "norm"),
        ({"num_layers": 1, "norm_type": "group"}, "norm_type"),
        ({"num_layers": 1, "ffn_multiplier": 0}, "ffn_multiplier"),
        ({"num_layers": 1, "ffn_activation": "tanh"}, "activation"),
        ({"num_layers": 1, "layout": "blocks_first"}, "layout"),
    ],
)
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        layers.UniMixerEncoder(mixing=layers.FMMixing(), **kwargs)


def test_mixing_must_be_a_layer():
    with pytest.raises(ValueError, match="`mixing`"):
        layers.UniMixerEncoder(num_layers=1, mixing="unimixing")


def test_block_scope_siamese_encoder_matches_spec_section_7():
    encoder = layers.UniMixerEncoder(
        num_layers=2,
        mixing=layers.UniMixing(block_size=8),
        ffn_multiplier=2,
        norm="siamese",
        siamese_scope="block",
    )
    inputs = random_tokens(SHAPE)
    encoder.build(SHAPE)
    randomize_norm_scales(encoder)
    outputs = keras.ops.convert_to_numpy(encoder(inputs))

    post, pre = inputs.astype("float64"), inputs.astype("float64")
    for block in encoder.blocks:
        assert not hasattr(block, "ffn_norm")  # one pair of norms per block
        block_input = post + rms_norm(pre, scale(block.mixing_stream_norm))
        mixed = block_input + apply(block.mixing, block_input)
        update = mixed + apply(block.ffn, mixed) - block_input
        post = rms_norm(post + update, scale(block.mixing_norm))
        pre = pre + update
    expected = post + rms_norm(pre, scale(encoder.output_norm))
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-4)


def test_encoder_dtype_policy_reaches_every_block():
    encoder = layers.UniMixerEncoder(
        num_layers=2, mixing=MIXERS["unimixer_lite"](), ffn_multiplier=2, dtype="mixed_bfloat16"
    )
    outputs = encoder(random_tokens(SHAPE))
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    for block in encoder.blocks:
        for layer in (block, block.mixing, block.ffn, block.mixing_norm):
            assert layer.dtype_policy.name == "mixed_bfloat16", layer.name
        assert keras.backend.standardize_dtype(block.ffn.hidden_kernel.dtype) == "float32"
    # The constraints still run in float32 inside the bfloat16 blocks.
    weights = keras.ops.convert_to_numpy(encoder.blocks[0].mixing.global_weights())
    assert weights.dtype == np.float32
    again = layers.UniMixerEncoder.from_config(encoder.get_config())
    assert again.blocks[0].ffn.dtype_policy.name == "mixed_bfloat16"


LAYOUTS = ("token_major", "batch_major")
LAYOUT_CASES = [
    (mixer, norm) for mixer in sorted(MIXERS) for norm in ("siamese", "post", "pre")
] + [("unimixer_lite", "siamese_block")]


def encoder_model(mixer, norm, layout):
    encoder = layers.UniMixerEncoder(
        num_layers=2,
        mixing=MIXERS[mixer](),
        ffn_multiplier=2,
        layout=layout,
        norm="siamese" if norm == "siamese_block" else norm,
        siamese_scope="block" if norm == "siamese_block" else "sublayer",
    )
    inputs = keras.Input(SHAPE[1:])
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(encoder(inputs))))


@pytest.mark.parametrize("mixer,norm", LAYOUT_CASES)
def test_token_major_and_batch_major_layouts_compute_the_same_function_and_gradients(mixer, norm):
    models = {
        layout: encoder_model(mixer, norm, layout) for layout in ("token_major", "batch_major")
    }
    models["token_major"].set_weights(models["batch_major"].get_weights())
    inputs, targets = random_tokens((8,) + SHAPE[1:], seed=2), np.ones((8, 1), "float32")
    outputs = {name: model.predict_on_batch(inputs) for name, model in models.items()}
    np.testing.assert_allclose(outputs["token_major"], outputs["batch_major"], atol=1e-5)
    for model in models.values():  # one SGD step: equal updates mean equal gradients
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        model.train_on_batch(inputs, targets)
    trained = {name: model.get_weights() for name, model in models.items()}
    for token_major, batch_major in zip(*trained.values(), strict=True):
        np.testing.assert_allclose(token_major, batch_major, atol=1e-5, rtol=1e-5)
    before = encoder_model(mixer, norm, "batch_major").get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(trained["token_major"], before, strict=True))


FIXTURES = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "name", ["lite_siamese", "unimixing_pre", "tokenmixing_post", "attention_pre"]
)
def test_models_saved_before_the_layout_option_load_with_their_outputs(name):
    # Saved at commit c6e9602, before `layout` existed (tests/layers/data/make_fixtures.py).
    expected = np.load(FIXTURES / "encoder_c6e9602_outputs.npz")
    model = keras.saving.load_model(FIXTURES / f"encoder_c6e9602_{name}.keras")
    encoder = next(layer for layer in model.layers if isinstance(layer, layers.UniMixerEncoder))
    assert encoder.layout == "auto"
    outputs = model.predict_on_batch(expected["inputs"])
    np.testing.assert_allclose(outputs, expected[name], atol=1e-5, rtol=1e-5)


def test_auto_layout_is_token_major_where_the_mixing_layer_was_measured_faster():
    backend = keras.backend.backend()
    expected = {
        "unimixer": "token_major",
        "unimixer_lite": "token_major",
        "rankmixer": "token_major" if backend == "jax" else "batch_major",
        "attention": "batch_major",  # no token-major path of its own
        "fm": "batch_major",
    }
    for mixer, layout in expected.items():
        encoder = layers.UniMixerEncoder(num_layers=1, mixing=MIXERS[mixer]())
        assert encoder.layout == "auto"
        assert encoder.resolved_layout() == layout, mixer


def test_a_block_runs_its_mixing_config_under_its_own_policy_and_refuses_a_conflicting_layer():
    config = keras.saving.serialize_keras_object(layers.UniMixing(block_size=8))
    block = layers.UniMixerBlock(config, ffn_multiplier=2, dtype="mixed_bfloat16")
    assert block.mixing.dtype_policy.name == "mixed_bfloat16"
    outputs = block(random_tokens(SHAPE))
    assert [keras.backend.standardize_dtype(x.dtype) for x in outputs] == ["bfloat16"] * 2
    with pytest.raises(ValueError, match="'mixed_bfloat16' but its `mixing` layer .* 'float32'"):
        layers.UniMixerBlock(layers.UniMixing(block_size=8), dtype="mixed_bfloat16")
    # Without a dtype of its own, the block takes the layer as given.
    assert layers.UniMixerBlock(layers.UniMixing(block_size=8)).mixing.dtype_policy.name == (
        "float32"
    )


@pytest.mark.parametrize("norm", ["siamese", "pre"])
def test_block_dropout_acts_on_both_branches_in_training_only(norm):
    inputs = random_tokens(SHAPE)
    plain = layers.UniMixerEncoder(num_layers=2, mixing=MIXERS["unimixer"](), norm=norm)
    dropped = layers.UniMixerEncoder(
        num_layers=2, mixing=MIXERS["unimixer"](), norm=norm, dropout=0.5
    )
    plain.build(SHAPE)
    dropped.build(SHAPE)
    dropped.set_weights(plain.get_weights())
    assert [block.dropout for block in dropped.blocks] == [0.5, 0.5]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(dropped(inputs, training=False)),
        keras.ops.convert_to_numpy(plain(inputs)),
        atol=1e-6,
    )
    trained = keras.ops.convert_to_numpy(dropped(inputs, training=True))
    assert np.all(np.isfinite(trained))
    assert np.max(np.abs(trained - keras.ops.convert_to_numpy(plain(inputs)))) > 1e-2
    again = layers.UniMixerEncoder.from_config(dropped.get_config())
    assert [block.dropout for block in again.blocks] == [0.5, 0.5]
    with pytest.raises(ValueError, match="`dropout` must be a number in \\[0, 1\\), got 1.0"):
        layers.UniMixerBlock(MIXERS["unimixer"](), dropout=1.0)
