import keras
import numpy as np
import pytest

from keras_unimixer import layers
from keras_unimixer.layers.initializers import token_mixing_permutation
from keras_unimixer.testing import check_layer, gradient_of, random_tokens

BATCH, TOKENS, DIM = 3, 4, 8
SHAPE = (BATCH, TOKENS, DIM)


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def unconstrained_tokenmixer(num_heads, num_tokens=TOKENS, token_dim=DIM):
    """UniMixing set to the exact TokenMixing special case: b = D/H, W_B = I, W_G = Pi."""
    return layers.UniMixing(
        block_size=token_dim // num_heads,
        symmetric=False,
        temperature=None,
        sinkhorn_iterations=0,
        block_specific=True,
        global_init="permutation",
        local_init="identity",
    )


MIXERS = {
    "token_mixing": lambda: layers.TokenMixing(num_heads=TOKENS),
    "unimixing": lambda: layers.UniMixing(block_size=8),
    "unimixing_shared": lambda: layers.UniMixing(block_size=4, block_specific=False),
    "unimixing_random_local": lambda: layers.UniMixing(block_size=16, local_init="random"),
    "unimixing_raw": lambda: layers.UniMixing(
        block_size=2, temperature=None, sinkhorn_iterations=0
    ),
    "unimixing_lite": lambda: layers.UniMixingLite(block_size=4, num_basis=3, rank=2),
    "unimixing_lite_identity": lambda: layers.UniMixingLite(
        block_size=2, num_basis=2, rank=4, global_init="identity", init_scale=4.0
    ),
    "unimixing_permutation": lambda: layers.UniMixing(
        block_size=2, global_init="permutation", init_scale=3.0
    ),
    "unimixing_l2": lambda: layers.UniMixing(
        block_size=4, normalization="l2", temperature=None, sinkhorn_iterations=0
    ),
    "unimixing_transposed": lambda: layers.UniMixing(block_size=4, transpose_tokens=True),
    "unimixing_lite_full": lambda: layers.UniMixingLite(block_size=4, num_basis=2, rank="full"),
    "unimixing_lite_raw": lambda: layers.UniMixingLite(
        block_size=4, num_basis=2, rank=2, basis_coefficients="raw", transpose_tokens=True
    ),
    "attention": lambda: layers.AttentionMixing(num_heads=2),
    "fm": lambda: layers.FMMixing(),
}


# (trainable, non-trainable) variables after build: UniMixing's temperature is non-trainable.
WEIGHT_COUNTS = {
    "token_mixing": (0, 0),
    "unimixing": (2, 1),
    "unimixing_shared": (2, 1),
    "unimixing_random_local": (2, 1),
    "unimixing_raw": (2, 0),
    "unimixing_lite": (4, 1),
    "unimixing_lite_identity": (4, 1),
    "unimixing_permutation": (2, 1),
    "unimixing_l2": (2, 0),
    "unimixing_transposed": (2, 1),
    "unimixing_lite_full": (3, 1),
    "unimixing_lite_raw": (4, 1),
    "attention": (4, 0),
    "fm": (1, 0),
}


@pytest.mark.parametrize("name", sorted(MIXERS))
def test_standard_layer_checks(name):
    # The expensive steps (fit, .keras round trip) run once per class, in test_contract.py.
    trainable, non_trainable = WEIGHT_COUNTS[name]
    check_layer(
        MIXERS[name],
        SHAPE,
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
        expensive=False,
    )


@pytest.mark.parametrize("name", sorted(set(MIXERS) - {"attention", "fm"}))
def test_mixing_matrix_reproduces_the_layer(name):
    layer = MIXERS[name]()
    inputs = random_tokens(SHAPE)
    outputs = to_numpy(layer(inputs))
    matrix = to_numpy(layer.mixing_matrix())
    assert matrix.shape == (TOKENS * DIM, TOKENS * DIM)
    expected = inputs.reshape(BATCH, -1) @ matrix.T
    np.testing.assert_allclose(outputs.reshape(BATCH, -1), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["attention", "fm"])
def test_per_sample_mixing_matrix_reproduces_the_layer(name):
    layer = MIXERS[name]()
    inputs = random_tokens(SHAPE)
    outputs = to_numpy(layer(inputs))
    matrices = to_numpy(layer.mixing_matrix(inputs))
    assert matrices.shape == (BATCH, TOKENS * DIM, TOKENS * DIM)
    expected = np.einsum("bij,bj->bi", matrices, inputs.reshape(BATCH, -1))
    np.testing.assert_allclose(outputs.reshape(BATCH, -1), expected, atol=1e-5)


def test_token_mixing_is_the_documented_transpose():
    inputs = random_tokens((2, 3, 6))
    outputs = to_numpy(layers.TokenMixing(num_heads=2)(inputs))
    assert outputs.shape == (2, 2, 9)
    head_dim = 3
    for head in range(2):
        for token in range(3):
            np.testing.assert_array_equal(
                outputs[:, head, token * head_dim : (token + 1) * head_dim],
                inputs[:, token, head * head_dim : (head + 1) * head_dim],
            )


@pytest.mark.parametrize("num_tokens,num_heads", [(4, 4), (3, 2), (2, 6), (1, 1)])
def test_permutation_matrix_properties(num_tokens, num_heads):
    permutation = token_mixing_permutation(num_tokens, num_heads)
    size = num_tokens * num_heads
    assert permutation.shape == (size, size)
    np.testing.assert_array_equal(permutation.sum(axis=0), np.ones(size))
    np.testing.assert_array_equal(permutation.sum(axis=1), np.ones(size))
    np.testing.assert_array_equal(permutation @ permutation.T, np.eye(size))
    if num_tokens == num_heads:
        np.testing.assert_array_equal(permutation, permutation.T)
        np.testing.assert_array_equal(permutation @ permutation, np.eye(size))


@pytest.mark.parametrize("num_tokens,token_dim,num_heads", [(4, 8, 4), (4, 8, 2), (3, 12, 6)])
def test_unimixing_reproduces_token_mixing_exactly(num_tokens, token_dim, num_heads):
    inputs = random_tokens((5, num_tokens, token_dim))
    expected = to_numpy(layers.TokenMixing(num_heads)(inputs)).reshape(5, -1)
    mixer = unconstrained_tokenmixer(num_heads, num_tokens, token_dim)
    actual = to_numpy(mixer(inputs)).reshape(5, -1)
    assert np.max(np.abs(actual - expected)) <= 1e-6


def test_constrained_unimixing_at_low_temperature_approaches_token_mixing():
    num_heads = TOKENS
    mixer = layers.UniMixing(
        block_size=DIM // num_heads,
        symmetric=True,
        temperature=0.05,
        sinkhorn_iterations=10,
        constrain_local=False,
        local_init="identity",
    )
    inputs = random_tokens((5, TOKENS, DIM))
    mixer(inputs)
    permutation = token_mixing_permutation(TOKENS, num_heads)
    mixer.global_kernel.assign(10.0 * permutation)
    actual = to_numpy(mixer(inputs))
    expected = to_numpy(layers.TokenMixing(num_heads)(inputs))
    assert np.max(np.abs(actual - expected)) <= 1e-3


def test_permutation_init_equals_token_mixing_permutation():
    mixer = layers.UniMixing(block_size=2, global_init="permutation")
    mixer.build(SHAPE)
    np.testing.assert_array_equal(
        to_numpy(mixer.global_kernel), token_mixing_permutation(TOKENS, DIM // 2)
    )


@pytest.mark.parametrize("block_size", [1, 2, 16, 32])
def test_unimixing_heads_are_not_tied_to_tokens(block_size):
    # T * D / block_size blocks, none of these equal to T = 4.
    assert TOKENS * DIM // block_size != TOKENS
    layer = layers.UniMixing(block_size=block_size)
    outputs = layer(random_tokens(SHAPE))
    assert tuple(outputs.shape) == SHAPE
    assert layer.num_blocks == TOKENS * DIM // block_size


@pytest.mark.parametrize(
    "block_size,block_specific", [(2, True), (8, True), (4, False), (32, True)]
)
def test_unimixing_parameter_count_matches_closed_form(block_size, block_specific):
    layer = layers.UniMixing(block_size=block_size, block_specific=block_specific)
    layer.build(SHAPE)
    num_blocks = TOKENS * DIM // block_size
    local = block_size**2 * (num_blocks if block_specific else 1)
    expected = num_blocks**2 + local
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert trainable == expected
    assert expected == layers.UniMixing.closed_form_params(TOKENS, DIM, block_size, block_specific)
    assert layer.count_params() == expected + 1  # + the non-trainable temperature


@pytest.mark.parametrize("block_size,num_basis,rank", [(4, 2, 2), (2, 4, 8), (8, 1, 1)])
def test_unimixing_lite_parameter_count_matches_closed_form(block_size, num_basis, rank):
    layer = layers.UniMixingLite(block_size=block_size, num_basis=num_basis, rank=rank)
    layer.build(SHAPE)
    num_blocks = TOKENS * DIM // block_size
    expected = num_basis * block_size**2 + num_blocks * num_basis + 2 * num_blocks * rank
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert trainable == expected
    assert expected == layers.UniMixingLite.closed_form_params(
        TOKENS, DIM, block_size, num_basis, rank
    )


def test_lite_has_fewer_parameters_than_full_unimixing_at_equal_block_size():
    full = layers.UniMixing.closed_form_params(16, 64, 32)
    lite = layers.UniMixingLite.closed_form_params(16, 64, 32, num_basis=4, rank=4)
    assert lite < full / 5


@pytest.mark.parametrize("name", ["unimixing", "unimixing_lite"])
def test_constrained_weights_are_doubly_stochastic_and_symmetric(name):
    layer = MIXERS[name]()
    layer.build(SHAPE)
    global_weights = to_numpy(layer.global_weights())
    np.testing.assert_allclose(global_weights.sum(axis=0), 1.0, atol=1e-4)
    np.testing.assert_allclose(global_weights.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(global_weights, global_weights.T, atol=1e-5)
    local_weights = to_numpy(layer.local_weights())
    np.testing.assert_allclose(local_weights.sum(axis=-1), 1.0, atol=1e-4)
    np.testing.assert_allclose(local_weights.sum(axis=-2), 1.0, atol=1e-4)


def test_temperature_is_a_non_trainable_variable_that_changes_the_output():
    layer = layers.UniMixing(block_size=4)
    inputs = random_tokens(SHAPE)
    warm = to_numpy(layer(inputs))
    assert layer.temperature_variable.trainable is False
    assert layer.temperature_variable in layer.non_trainable_weights
    layer.temperature_variable.assign(0.05)
    cold = to_numpy(layer(inputs))
    assert np.max(np.abs(warm - cold)) > 1e-3


def test_symmetric_flag_controls_symmetry():
    layer = layers.UniMixing(block_size=4, symmetric=False, global_init="random")
    layer.build(SHAPE)
    weights = to_numpy(layer.global_weights())
    assert np.max(np.abs(weights - weights.T)) > 1e-4


@pytest.mark.parametrize(
    "make_layer,argument",
    [
        (lambda: layers.TokenMixing(num_heads=0), "num_heads"),
        (lambda: layers.TokenMixing(num_heads=-2), "num_heads"),
        (lambda: layers.UniMixing(block_size=0), "block_size"),
        (lambda: layers.UniMixing(block_size=4, sinkhorn_iterations=-1), "sinkhorn_iterations"),
        (lambda: layers.UniMixing(block_size=4, temperature=0.0), "temperature"),
        (lambda: layers.UniMixing(block_size=4, temperature=None), "sinkhorn_iterations"),
        (lambda: layers.UniMixing(block_size=4, global_init="zeros"), "global_init"),
        (lambda: layers.UniMixingLite(block_size=4, num_basis=0), "num_basis"),
        (lambda: layers.UniMixingLite(block_size=4, rank=0), "rank"),
        (lambda: layers.AttentionMixing(num_heads=0), "num_heads"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(make_layer, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make_layer()


@pytest.mark.parametrize(
    "make_layer,shape,pattern",
    [
        (lambda: layers.UniMixing(block_size=5), SHAPE, r"`block_size`=5 must divide .* 32"),
        (lambda: layers.UniMixingLite(block_size=3), SHAPE, r"`block_size`=3 must divide"),
        (lambda: layers.UniMixingLite(block_size=8, rank=5), SHAPE, r"`rank`=5 .* 1\.\.4"),
        (lambda: layers.TokenMixing(num_heads=3), SHAPE, r"`num_heads`=3 must divide token_dim=8"),
        (lambda: layers.AttentionMixing(num_heads=3), SHAPE, r"`num_heads`=3 must divide"),
        (lambda: layers.UniMixing(block_size=16, global_init="permutation"), SHAPE, "permutation"),
        (lambda: layers.UniMixing(block_size=4), (3, 32), "rank 3"),
        (lambda: layers.FMMixing(), (3, 4, 8, 1), "rank 3"),
        (lambda: layers.TokenMixing(num_heads=2), (3, None, 8), "static num_tokens"),
    ],
)
def test_bad_shapes_fail_at_build_with_the_valid_values(make_layer, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_layer().build(shape)


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: layers.UniMixing(block_size=8, temperature=0.3, init_stddev=1.0),
        lambda: layers.UniMixing(block_size=4, block_specific=False, local_init="random"),
        lambda: layers.UniMixingLite(block_size=4, num_basis=3, rank=2, init_stddev=1.0),
    ],
    ids=["unimixing", "unimixing_shared", "unimixing_lite"],
)
def test_frozen_mixing_weights_are_constants_with_the_same_outputs(make_layer):
    inputs = random_tokens(SHAPE)
    inner = make_layer()
    model = keras.Sequential([keras.Input(SHAPE[1:]), inner, layers.UniMixerEncoder(1, inner)])
    expected = to_numpy(model(inputs))
    with layers.mixing.frozen_mixing_weights(model):
        np.testing.assert_allclose(to_numpy(model(inputs)), expected, rtol=1e-6, atol=1e-6)
        # The constants are used, not the weights: zeroing every raw parameter changes nothing.
        saved = [variable.numpy() for variable in model.trainable_weights]
        mixing_variables = [
            variable
            for layer in model._flatten_layers()
            if isinstance(layer, (layers.UniMixing, layers.UniMixingLite))
            for variable in layer.trainable_weights
        ]
        assert len(mixing_variables) >= 4  # the direct layer and the encoder's copy
        for variable in mixing_variables:
            variable.assign(np.zeros(variable.shape, "float32"))
        np.testing.assert_allclose(to_numpy(model(inputs)), expected, rtol=1e-6, atol=1e-6)
    # Outside the block the live (zeroed) weights are used again.
    assert np.abs(to_numpy(model(inputs)) - expected).max() > 1e-3
    for variable, value in zip(model.trainable_weights, saved, strict=True):
        variable.assign(value)
    np.testing.assert_allclose(to_numpy(model(inputs)), expected, rtol=1e-6, atol=1e-6)


def test_symmetric_permutation_init_is_refused_where_pi_is_not_symmetric():
    # T = 4 tokens, block_size 4 of D = 8 gives H = 2 != T: a symmetric matrix cannot be Pi.
    with pytest.raises(ValueError, match="symmetric=False"):
        layers.UniMixing(block_size=4, global_init="permutation").build(SHAPE)
    layers.UniMixing(block_size=4, global_init="permutation", symmetric=False).build(SHAPE)
    # H == T: Pi is its own transpose, so the symmetric constraint can represent it.
    layers.UniMixing(block_size=2, global_init="permutation").build(SHAPE)


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_identity_init_scale_sets_the_starting_diagonal(scale):
    layer = layers.UniMixing(block_size=4, global_init="identity", init_scale=scale)
    layer.build(SHAPE)
    num_blocks = layer.num_blocks
    expected = np.exp(scale) / (np.exp(scale) + num_blocks - 1)
    np.testing.assert_allclose(np.diag(to_numpy(layer.global_weights())), expected, rtol=1e-5)


@pytest.mark.parametrize("global_init", ["identity", "permutation"])
def test_lite_low_rank_start_peaks_on_its_target(global_init):
    # block_size 2 of D = 8: H = 4 = T, so Pi is symmetric; n = 16 blocks, rank 4.
    layer = layers.UniMixingLite(
        block_size=2, num_basis=2, rank=4, global_init=global_init, init_scale=8.0
    )
    layer.build(SHAPE)
    target = (
        np.eye(layer.num_blocks)
        if global_init == "identity"
        else token_mixing_permutation(TOKENS, DIM // 2)
    )
    weights = to_numpy(layer.global_weights())
    np.testing.assert_array_equal(np.argmax(weights, axis=1), np.argmax(target, axis=1))
    assert np.min(weights[target == 1]) > 2 * np.max(weights[target == 0])


def coefficient_gradient(layer, inputs, target):
    """d loss / d omega of a built UniMixing-Lite layer (loss: squared error to `target`)."""
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    index = [v.path for v in layer.trainable_variables].index(layer.local_coefficients.path)

    def loss(coefficients):
        values = list(trainable)
        values[index] = coefficients
        outputs = layer.stateless_call(values, non_trainable, inputs)
        outputs = outputs[0] if isinstance(outputs, tuple) else outputs
        return keras.ops.sum((outputs - target) ** 2)

    return np.abs(gradient_of(loss, to_numpy(layer.local_coefficients)))


def test_lite_basis_coefficients_get_gradients_at_the_first_step():
    layer = layers.UniMixingLite(block_size=4, num_basis=3, rank=2)
    layer.build(SHAPE)
    inputs, target = random_tokens(SHAPE), random_tokens(SHAPE, seed=9)
    grads = coefficient_gradient(layer, inputs, target)
    assert np.all(np.isfinite(grads))
    assert np.all(grads.max(axis=1) > 1e-4)  # every block's coefficients move
    # The defect: identical basis matrices (the old identity start) give no gradient at all.
    layer.local_basis.assign(np.broadcast_to(np.eye(4, dtype="float32"), (3, 4, 4)))
    assert coefficient_gradient(layer, inputs, target).max() < 1e-5


def test_frozen_weights_leave_no_stale_compiled_predict_behind():
    # A predict compiled inside the block holds the frozen matrices; after the block, predict and
    # evaluate must follow the live weights again.
    inputs = keras.Input(SHAPE[1:])
    model = keras.Model(inputs, layers.UniMixing(block_size=8)(inputs))
    model.compile(loss="mse")
    x = random_tokens(SHAPE)
    with layers.mixing.frozen_mixing_weights(model):
        model.predict(x, verbose=0)
        model.evaluate(x, x, verbose=0)
    mixing = model.layers[-1]
    mixing.global_kernel.assign(to_numpy(mixing.global_kernel) + 3.0 * np.eye(mixing.num_blocks))
    eager = to_numpy(model(x))
    np.testing.assert_allclose(model.predict(x, verbose=0), eager, atol=1e-5)
    expected_loss = float(np.mean((eager - x) ** 2))
    assert model.evaluate(x, x, verbose=0) == pytest.approx(expected_loss, rel=1e-4)


@pytest.mark.parametrize(
    "shape,block_size",
    [((3, 4, 8), 8), ((3, 4, 8), 2), ((3, 4, 8), 16), ((3, 4, 6), 4)],
    ids=["block_is_token", "blocks_within_tokens", "blocks_span_tokens", "blocks_straddle"],
)
@pytest.mark.parametrize(
    "make_layer",
    [
        lambda b: layers.UniMixing(block_size=b, local_init="random", init_stddev=1.0),
        lambda b: layers.UniMixing(block_size=b, block_specific=False, local_init="random"),
        lambda b: layers.UniMixingLite(block_size=b, num_basis=2, rank=1, init_stddev=1.0),
    ],
    ids=["unimixing", "unimixing_shared", "unimixing_lite"],
)
def test_token_major_call_equals_call_for_every_block_layout(shape, block_size, make_layer):
    layer = make_layer(block_size)
    inputs = random_tokens(shape)
    expected = to_numpy(layer(inputs))
    token_major = layer.call_token_major(keras.ops.convert_to_tensor(inputs.transpose(1, 0, 2)))
    assert tuple(token_major.shape) == (shape[1], shape[0], shape[2])
    np.testing.assert_allclose(to_numpy(token_major).transpose(1, 0, 2), expected, atol=1e-6)


def _blocks_reference(layer, inputs, across_blocks: bool = False):
    """numpy: split into blocks, local matmul, (standardize over blocks), global matmul."""
    global_weights = to_numpy(layer.global_weights())
    local_weights = to_numpy(layer.local_weights())
    blocks = inputs.reshape(inputs.shape[0], layer.num_blocks, layer.block_size)
    local = np.einsum("bnk,nkl->bnl", blocks, local_weights)
    if across_blocks:
        local = (local - local.mean(axis=1, keepdims=True)) / np.sqrt(
            local.var(axis=1, keepdims=True) + 1e-6
        )
    return np.einsum("mn,bnl->bml", global_weights, local).reshape(inputs.shape)


def test_l2_normalization_gives_signed_rows_of_unit_norm_after_the_symmetry():
    layer = MIXERS["unimixing_l2"]()
    inputs = random_tokens(SHAPE)
    outputs = to_numpy(layer(inputs))
    logits = to_numpy(layer.global_kernel)
    symmetric = (logits + logits.T) / 2
    expected = symmetric / np.linalg.norm(symmetric, axis=1, keepdims=True)
    global_weights = to_numpy(layer.global_weights())
    np.testing.assert_allclose(global_weights, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(to_numpy(layer.local_weights()), axis=-1), 1.0, 1e-5)
    assert global_weights.min() < 0  # signed, unlike Sinkhorn's positive matrices
    np.testing.assert_allclose(outputs, _blocks_reference(layer, inputs), atol=1e-5)
    with pytest.raises(ValueError, match="`normalization`='l2' .* Pass temperature=None"):
        layers.UniMixing(block_size=4, normalization="l2")


@pytest.mark.parametrize("name", ["unimixer", "unimixer_lite"])
def test_builders_drop_the_temperature_for_l2_and_refuse_one_that_was_set(name):
    options = {"normalization": "l2"}
    layer = layers.mixing.make_mixing(name, 4, 8, mixing_options=options)
    assert (layer.normalization, layer.temperature, layer.sinkhorn_iterations) == ("l2", None, 0)
    with pytest.raises(ValueError, match="normalization='l2' uses no temperature"):
        layers.mixing.make_mixing(name, 4, 8, temperature=0.5, mixing_options=options)


@pytest.mark.parametrize(
    "make",
    [
        lambda: layers.UniMixing(block_size=4, normalize_across_blocks=True),
        lambda: layers.UniMixingLite(
            block_size=4, num_basis=2, rank=2, normalize_across_blocks=True
        ),
    ],
)
def test_the_norm_across_blocks_standardizes_each_coordinate_between_the_two_steps(make):
    layer = make()
    inputs = random_tokens(SHAPE)
    outputs = to_numpy(layer(inputs))
    np.testing.assert_allclose(outputs, _blocks_reference(layer, inputs, True), atol=1e-4)
    token_major = layer.call_token_major(keras.ops.convert_to_tensor(inputs.transpose(1, 0, 2)))
    np.testing.assert_allclose(to_numpy(token_major).transpose(1, 0, 2), outputs, atol=1e-5)
    with pytest.raises(ValueError, match="not a linear map"):
        layer.mixing_matrix()
    check_layer(make, SHAPE, expensive=False)


def test_the_token_transpose_is_rankmixers_applied_before_the_learned_mixing():
    transposed = MIXERS["unimixing_transposed"]()
    inputs = random_tokens(SHAPE)
    outputs = to_numpy(transposed(inputs))
    plain = layers.UniMixing(block_size=4)
    plain.build(SHAPE)
    plain.set_weights(transposed.get_weights())
    expected = to_numpy(plain(layers.TokenMixing(num_heads=TOKENS)(inputs)))
    np.testing.assert_allclose(outputs, expected, atol=1e-6)
    token_major = transposed.call_token_major(
        keras.ops.convert_to_tensor(inputs.transpose(1, 0, 2))
    )
    np.testing.assert_allclose(to_numpy(token_major).transpose(1, 0, 2), outputs, atol=1e-6)
    with pytest.raises(ValueError, match="num_tokens=3 to divide token_dim=8"):
        layers.UniMixing(block_size=4, transpose_tokens=True)(random_tokens((2, 3, 8)))


def test_full_rank_lite_has_one_global_matrix_and_raw_coefficients_skip_the_softmax():
    full = MIXERS["unimixing_lite_full"]()
    full.build(SHAPE)
    num_blocks = TOKENS * DIM // 4
    assert tuple(full.global_kernel.shape) == (num_blocks, num_blocks)
    assert not hasattr(full, "global_left")
    np.testing.assert_array_equal(to_numpy(full.global_logits()), to_numpy(full.global_kernel))
    assert full.num_params() == 2 * 16 + num_blocks * 2 + num_blocks**2
    assert full.num_params() == sum(int(np.prod(w.shape)) for w in full.trainable_weights)
    raw = layers.UniMixingLite(block_size=4, num_basis=2, rank=2, basis_coefficients="raw")
    raw.build(SHAPE)
    expected = np.einsum("nk,kij->nij", to_numpy(raw.local_coefficients), to_numpy(raw.local_basis))
    np.testing.assert_allclose(to_numpy(raw.local_logits()), expected, atol=1e-6)
    with pytest.raises(ValueError, match="`basis_coefficients` must be one of"):
        layers.UniMixingLite(block_size=4, basis_coefficients="tanh")
    layer = layers.mixing.make_mixing("unimixer_lite", 4, 8, rank="full")
    assert layer.rank == "full"


@pytest.mark.parametrize(
    "make,weight",
    [
        (lambda m: layers.UniMixing(block_size=4, learning_rate_multiplier=m), "global_kernel"),
        (
            lambda m: layers.UniMixingLite(
                block_size=4, num_basis=2, rank=2, learning_rate_multiplier=m
            ),
            "global_left",
        ),
    ],
)
def test_the_learning_rate_multiplier_keeps_the_start_and_speeds_up_adam_on_the_mixing(
    make, weight
):
    inputs, targets = random_tokens(SHAPE, seed=1), random_tokens(SHAPE, seed=2)

    def one_adam_step(multiplier):
        keras.utils.set_random_seed(3)
        layer = make(multiplier)
        model = keras.Sequential([keras.Input(SHAPE[1:]), layer])
        effective = lambda: to_numpy(layer.mixing_parameter(getattr(layer, weight)))  # noqa: E731
        start = effective()
        # A tiny epsilon: Adam's step is then ~lr whatever the gradient's scale.
        model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-12), loss="mse")
        model.fit(inputs, targets, batch_size=BATCH, epochs=1, verbose=0)
        return layer, start, effective() - start

    plain, plain_start, plain_step = one_adam_step(1.0)
    fast, fast_start, fast_step = one_adam_step(10.0)
    np.testing.assert_allclose(fast_start, plain_start, rtol=1e-5, atol=1e-7)  # the same start
    # Adam moves each stored parameter by ~lr whatever the gradient's scale: 10x in effect.
    np.testing.assert_allclose(fast_step, 10.0 * plain_step, rtol=1e-2, atol=1e-6)
    assert np.abs(plain_step).max() > 1e-4
    assert fast.get_config()["learning_rate_multiplier"] == 10.0
