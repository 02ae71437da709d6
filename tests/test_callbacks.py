import keras
import numpy as np
import pytest

from keras_unimixer import callbacks, layers
from keras_unimixer.testing import random_tokens

SHAPE = (4, 8)


def small_model():
    inputs = keras.Input(shape=SHAPE)
    encoded = layers.UniMixerEncoder(
        num_layers=2, mixing=layers.UniMixingLite(block_size=4, rank=2), ffn_multiplier=1
    )(inputs)
    outputs = keras.layers.Dense(1)(keras.ops.mean(encoded, axis=1))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    return model


class RecordTemperature(keras.callbacks.Callback):
    """Reads the temperature the train step sees, from the model's own variables."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        values = {
            float(keras.ops.convert_to_numpy(v))
            for v in callbacks.temperature_variables(self.model)
        }
        assert len(values) == 1, values
        self.seen.append(values.pop())


def data(num_examples=40):
    x = random_tokens((num_examples,) + SHAPE)
    return x, x[:, 0, :1] * x[:, 1, :1]


def test_linear_schedule_over_all_training_steps():
    model = small_model()
    x, y = data()
    anneal = callbacks.TemperatureAnnealing(start=1.0, end=0.05)
    record = RecordTemperature()
    model.fit(x, y, batch_size=10, epochs=3, callbacks=[anneal, record], verbose=0)
    total = 12  # 4 steps per epoch, 3 epochs
    expected = [1.0 + (0.05 - 1.0) * step / (total - 1) for step in range(total)]
    assert expected[-1] == pytest.approx(0.05)  # the last step runs at the end value
    np.testing.assert_allclose(record.seen, expected, rtol=1e-6)
    # After fit, the variables hold the last value the schedule set.
    for variable in callbacks.temperature_variables(model):
        assert float(keras.ops.convert_to_numpy(variable)) == pytest.approx(expected[-1])


def test_temperature_reaches_end_and_stays_there():
    model = small_model()
    x, y = data()
    record = RecordTemperature()
    anneal = callbacks.TemperatureAnnealing(start=2.0, end=0.1, total_steps=4)
    history = model.fit(x, y, batch_size=10, epochs=2, callbacks=[anneal, record], verbose=0)
    np.testing.assert_allclose(
        record.seen, [2.0, 2.0 - 1.9 / 3, 2.0 - 3.8 / 3, 0.1, 0.1, 0.1, 0.1, 0.1], rtol=1e-6
    )
    assert history.history["temperature"] == pytest.approx([0.1, 0.1])


def test_a_second_fit_continues_from_the_optimizer_step():
    model = small_model()
    x, y = data()
    anneal = callbacks.TemperatureAnnealing(start=1.0, end=0.2, total_steps=8)
    record = RecordTemperature()
    model.fit(x, y, batch_size=10, epochs=1, callbacks=[anneal, record], verbose=0)
    model.fit(x, y, batch_size=10, epochs=1, callbacks=[anneal, record], verbose=0)
    expected = [1.0 - 0.8 * step / 7 for step in range(8)]
    np.testing.assert_allclose(record.seen, expected, rtol=1e-6)


def test_model_without_unimixing_is_rejected():
    inputs = keras.Input(shape=SHAPE)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    model.compile(optimizer="adam", loss="mse")
    x, y = data()
    with pytest.raises(ValueError, match="no layer with a temperature"):
        model.fit(x, y, epochs=1, callbacks=[callbacks.TemperatureAnnealing()], verbose=0)


@pytest.mark.parametrize(
    "kwargs,argument",
    [({"start": 0}, "start"), ({"end": -1.0}, "end"), ({"total_steps": 0}, "total_steps")],
)
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        callbacks.TemperatureAnnealing(**kwargs)
