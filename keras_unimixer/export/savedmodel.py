"""SavedModel export for TF Serving: raw named features in, `probability` and `logit` out."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_unimixer.datasets.schema import (
    MULTI_CATEGORICAL,
    NUM_RESERVED_IDS,
    NUMERIC,
    features_from_config,
)
from keras_unimixer.export.preprocessing import ServingPreprocessor, raw_input_signature
from keras_unimixer.features import FeatureSpec
from keras_unimixer.layers.mixing import frozen_mixing_weights
from keras_unimixer.saving import load_model
from keras_unimixer.utils.types import ArrayLike

logger = logging.getLogger("keras_unimixer.export")

SIGNATURE = "serving_default"
WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_FILE = "keras_unimixer.json"


def next_version(base_dir: str | Path) -> int:
    """1 + the highest numeric version under `base_dir` (TF Serving serves the highest)."""
    base_dir = Path(base_dir)
    versions = [int(p.name) for p in base_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def version_directory(output: str | Path, version: int | None = None) -> Path:
    """`output/<version>`, checked: a positive version that does not exist yet."""
    base = Path(output)
    version = next_version(base) if version is None else version
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be a positive integer, got {version!r}.")
    target = base / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists; pick another `version` or remove it.")
    return target


def core_savedmodel(model: keras.Model, directory: str | Path) -> object:
    """Export `model` (encoded inputs) with Keras' exporter and load it back as a TF object.

    Under the JAX backend Keras converts the model with jax2tf, so the same wrapper serves models
    of either backend. The UniMixing constraints are traced as constants
    (`frozen_mixing_weights`): serving does not rerun Sinkhorn at every request.
    """
    with frozen_mixing_weights(model):
        model.export(str(directory), format="tf_saved_model", verbose=False)
    return tf.saved_model.load(str(directory))


class ServingModule(tf.Module):
    """Preprocessing + an exported model; `serve(raw)` returns the named serving outputs."""

    def __init__(
        self, core: tf.Module, features: Sequence[FeatureSpec | dict], preprocessing: dict
    ) -> None:
        super().__init__(name="keras_unimixer_serving")
        self.core = core
        self.preprocessor = ServingPreprocessor(features, preprocessing)

    def serve(self, raw: dict) -> dict:
        return self.outputs(self.core.serve(self.preprocessor(raw)))


class RankingServingModule(ServingModule):
    """`probability` and `logit` of the first task (and `<task>_...` of each, if several).

    `probability_outputs` names the tasks whose model output is already a probability (a final
    sigmoid): those serve it as `probability` and its log-odds as `logit`."""

    def __init__(
        self,
        core: tf.Module,
        features: Sequence[FeatureSpec | dict],
        preprocessing: dict,
        tasks: str | Sequence[str],
        probability_outputs: Sequence[str] = (),
    ) -> None:
        super().__init__(core, features, preprocessing)
        self.tasks = list(tasks)
        self.probability_outputs = set(probability_outputs)

    def outputs(self, logits: tf.Tensor | dict) -> dict:
        if not isinstance(logits, dict):
            logits = {self.tasks[0]: logits}
        outputs = {}
        for index, task in enumerate(self.tasks):
            value = tf.reshape(tf.cast(logits[task], tf.float32), [-1])
            if task in self.probability_outputs:
                probability = value
                clipped = tf.clip_by_value(value, 1e-7, 1.0 - 1e-7)
                logit = tf.math.log(clipped) - tf.math.log1p(-clipped)
            else:
                logit, probability = value, tf.sigmoid(value)
            if index == 0:
                outputs["logit"], outputs["probability"] = logit, probability
            if len(self.tasks) > 1:
                outputs[f"{task}_logit"], outputs[f"{task}_probability"] = logit, probability
        return outputs


class RetrievalServingModule(ServingModule):
    """Exact top-k over stored candidate embeddings: `scores`, `candidate_ids`, `candidates`.

    The scoring (`query @ candidates^T`, top-k) runs in TensorFlow, as `tasks.BruteForceIndex`
    does in Keras: jax2tf cannot yet export JAX's top-k for TensorFlow's XLA to read back.
    `serve` returns the default `k`; `top_k` takes `k` per request (clipped to `1..max_k`) and
    raw candidate values to exclude per query (e.g. items already seen; `""` pads).
    """

    def __init__(
        self,
        core: tf.Module,
        features: Sequence[FeatureSpec | dict],
        preprocessing: dict,
        embeddings: ArrayLike,
        ids: ArrayLike,
        vocabulary: Sequence,
        k: int,
        max_k: int,
    ) -> None:
        super().__init__(core, features, preprocessing)
        self.candidate_embeddings = tf.Variable(embeddings, trainable=False, dtype=tf.float32)
        self.candidate_ids = tf.Variable(ids, trainable=False, dtype=tf.int32)
        reserved = ["", "[OOV]"]  # ids 0 (missing) and 1 (out of vocabulary)
        values = reserved + [str(value) for value in vocabulary]
        self.candidate_values = tf.constant(values, tf.string)
        candidate_raw = np.asarray(values, dtype=object)[np.asarray(ids)]
        self.position_of = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(candidate_raw.astype(str)), tf.range(len(ids), dtype=tf.int32)
            ),
            default_value=-1,
        )
        self.k = k
        self.max_k = max_k

    def _scores(self, raw):
        queries = self.core.serve(self.preprocessor(raw))
        return tf.matmul(tf.cast(queries, tf.float32), self.candidate_embeddings, transpose_b=True)

    def _top(self, scores, k) -> dict:
        top_scores, positions = tf.math.top_k(scores, k=k)
        ids = tf.gather(self.candidate_ids, positions)
        return {
            "scores": top_scores,
            "candidate_ids": ids,
            "candidates": tf.gather(self.candidate_values, ids),
        }

    def serve(self, raw: dict) -> dict:
        return self._top(self._scores(raw), self.k)

    def top_k(self, raw: dict, k: tf.Tensor, exclude: tf.Tensor) -> dict:
        scores = self._scores(raw)
        positions = self.position_of.lookup(exclude)  # -1: not a candidate (or padding)
        excluded = tf.reduce_max(
            tf.one_hot(positions, tf.shape(scores)[1], dtype=tf.float32), axis=1
        )
        scores = tf.where(excluded > 0, tf.fill(tf.shape(scores), float("-inf")), scores)
        k = tf.clip_by_value(tf.cast(k, tf.int32), 1, self.max_k)
        return self._top(scores, k)


def output_activations(model: keras.Model, tasks: str | Sequence[str]) -> dict:
    """`{task: activation name}` for each output that an activation ends (none for a logit).

    For a functional model the layer or operation that makes each output is inspected (a layer's
    `activation`, an `Activation` layer, or a `keras.ops` activation such as `ops.sigmoid`); a
    subclassed model has no graph to read, so its last layer stands for its only output.
    """
    outputs = getattr(model, "_outputs_struct", None) if _is_graph_model(model) else None
    if outputs is None:
        layers = getattr(model, "layers", [])
        producers = {tasks[0]: layers[-1]} if len(tasks) == 1 and layers else {}
    elif isinstance(outputs, dict):
        producers = {task: _producer(outputs[task]) for task in tasks if task in outputs}
    else:
        flat = keras.tree.flatten(outputs)
        producers = {task: _producer(tensor) for task, tensor in zip(tasks, flat, strict=False)}
    found = {}
    for task, producer in producers.items():
        name = _activation_name(producer)
        if name is not None:
            found[task] = name
    return found


def _is_graph_model(model: keras.Model) -> bool:
    return (
        isinstance(model, keras.Model)
        and hasattr(model, "_operations")
        and hasattr(model, "_outputs_struct")
    )


def _producer(tensor):
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history[0]


def _activation_name(operation) -> str | None:
    if operation is None:
        return None
    if isinstance(operation, keras.layers.Activation):
        return keras.activations.serialize(operation.activation)
    activation = getattr(operation, "activation", None)
    if activation is not None and isinstance(operation, keras.layers.Layer):
        name = keras.activations.serialize(activation)
        name = name if isinstance(name, str) else getattr(activation, "__name__", str(name))
        return None if name == "linear" else name
    name = type(operation).__name__.lower()
    if not isinstance(operation, keras.layers.Layer) and name in _ACTIVATION_OPS:
        return name
    return None


_ACTIVATION_OPS = {
    "sigmoid",
    "softmax",
    "log_softmax",
    "tanh",
    "relu",
    "relu6",
    "gelu",
    "silu",
    "softplus",
    "hard_sigmoid",
    "elu",
    "selu",
    "leaky_relu",
}


def _probability_outputs(model: keras.Model, tasks: str | Sequence[str]) -> list[str]:
    """The tasks whose output ends in a sigmoid (served as probabilities); any other activation
    on an output is refused, since serving derives `probability` as sigmoid(logit)."""
    activations = output_activations(model, tasks)
    other = {task: name for task, name in activations.items() if name != "sigmoid"}
    if other:
        described = ", ".join(f"{task!r}: {name}" for task, name in sorted(other.items()))
        raise ValueError(
            f"The model's outputs end in an activation ({described}). Export serves `logit` and "
            "`probability` = sigmoid(logit), so a ranking model must output logits (a final "
            "Dense(1) without activation, trained with from_logits=True) or, at most, a "
            "sigmoid probability."
        )
    if activations:
        logger.info(
            "Outputs %s end in a sigmoid: served as `probability`, with `logit` their log-odds.",
            sorted(activations),
        )
    return sorted(activations)


def _model_tasks(model: keras.Model, labels: Sequence[str] | None) -> list[str]:
    tasks = getattr(model, "tasks", None)
    if tasks:
        return list(tasks)
    if isinstance(model.output, dict):
        return list(model.output)
    return [labels[0] if labels else "output"]


def export_savedmodel(
    model: keras.Model,
    spec: dict,
    output: str | Path,
    version: int | None = None,
    warmup_batch_size: int = 4,
) -> Path:
    """Write a TF Serving model version: `output/<version>/` with a raw-feature `serving_default`.

    Args:
        model: a trained ranking `keras.Model` (or a path to its `.keras` file).
        spec: the serving spec from `train` (`preprocessing.json`: features, vocabularies, means).
        output: the model's base directory, e.g. `saved_models/movielens_unimixer`.
        version: version number; default one above the highest already there.
        warmup_batch_size: rows of the warm-up request written to `assets.extra` (0: none).

    Returns:
        The version directory.
    """
    if isinstance(model, (str, Path)):
        model = load_model(model)
    target = version_directory(output, version)
    features = features_from_config(spec["features"])
    _check_model_inputs(model, features, spec["preprocessing"])
    tasks = _model_tasks(model, spec.get("labels"))
    probability_outputs = _probability_outputs(model, tasks)
    derived = {
        name: entry["derived_from"]
        for name, entry in spec["preprocessing"].items()
        if "derived_from" in entry
    }
    metadata = {
        "kind": "ranking",
        "tasks": tasks,
        "probability_outputs": probability_outputs,
        "derived_from": derived,
    }

    def make_module(core):
        return RankingServingModule(
            core, features, spec["preprocessing"], tasks, probability_outputs
        )

    request = example_request(spec, warmup_batch_size) if warmup_batch_size else None
    return save_serving(model, make_module, features, target, metadata, request)


def save_serving(
    model: keras.Model,
    make_module: Callable[[tf.Module], ServingModule],
    features: Sequence[FeatureSpec | dict],
    target: Path,
    metadata: dict,
    request: dict | None = None,
    extra_signatures: dict | None = None,
) -> Path:
    """Export `model`, wrap it with `make_module(core)`, save with a raw `serving_default`
    (and `extra_signatures`: name -> (module method name, input signature)).

    Writes the SavedModel to a scratch directory and moves it to `target` when complete, so TF
    Serving, which polls the base directory, never sees a half-written version.
    """
    with tempfile.TemporaryDirectory() as scratch:
        module = make_module(core_savedmodel(model, Path(scratch) / "core"))
        serve = tf.function(module.serve, input_signature=[raw_input_signature(features)])
        concrete = serve.get_concrete_function()
        signatures = {SIGNATURE: concrete}
        for name, (method, signature) in (extra_signatures or {}).items():
            function = tf.function(getattr(module, method), input_signature=signature)
            signatures[name] = function.get_concrete_function()
        # Serving needs no gradients, and jax2tf's gradient functions cannot be saved again.
        options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
        partial = Path(scratch) / "serving"
        tf.saved_model.save(module, str(partial), signatures=signatures, options=options)
        extra = partial / "assets.extra"
        extra.mkdir(parents=True, exist_ok=True)
        if request is not None:
            write_warmup_requests(extra / WARMUP_FILE, request, target.parent.name)
        metadata = {
            **metadata,
            "outputs": sorted(concrete.structured_outputs),
            "features": [f.to_dict() for f in features],
            "signature": SIGNATURE,
            "trained_backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "tensorflow_version": tf.__version__,
        }
        (extra / METADATA_FILE).write_text(json.dumps(metadata, indent=1))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(partial), str(target))
    logger.info("SavedModel written to %s", target)
    return target


def export_retrieval(
    query_tower: keras.Model,
    candidate_tower: keras.Model,
    candidates: dict,
    spec: dict,
    output: str | Path,
    candidate_feature: str,
    k: int = 10,
    version: int | None = None,
    max_k: int | None = None,
) -> Path:
    """Write a retrieval SavedModel: raw query features in, the top-`k` candidates out.

    The candidate tower embeds `candidates` (encoded candidate features, one row per candidate)
    once; the query tower is exported behind the raw-feature preprocessing of the query features
    and followed by an exact top-`k` over the stored embeddings (as `tasks.BruteForceIndex`).
    Outputs: `scores`, `candidate_ids` (encoded ids) and `candidates` (raw candidate values).

    Signatures: `serving_default` (raw query features; the top `k`) and `top_k` (raw query
    features, `k`: a scalar int32 clipped to `1..max_k`, and `exclude`: a `(batch, m)` string
    tensor of raw candidate values not to return for each query, `""` as padding).

    Args:
        query_tower: Keras model from (encoded) query features to embeddings.
        candidate_tower: Keras model from candidate features to embeddings.
        candidates: dict of encoded candidate feature arrays, `candidate_feature` among them.
        spec: the serving spec of the dataset (`serving_spec(data)`).
        output: the model's base directory; the version goes in a numbered folder below it.
        candidate_feature: the feature whose ids identify a candidate (e.g. `"item_id"`).
        k: number of candidates `serving_default` returns.
        version: version number; default one above the highest already there.
        max_k: the largest `k` a `top_k` request may ask for (default: every candidate).
    """
    if candidate_feature not in candidates:
        raise ValueError(
            f"`candidate_feature` {candidate_feature!r} is not in `candidates` "
            f"(features: {sorted(candidates)})."
        )
    ids = np.asarray(candidates[candidate_feature]).astype("int32")
    embeddings = keras.ops.convert_to_numpy(candidate_tower.predict(candidates, verbose=0))
    if not isinstance(k, int) or not 1 <= k <= len(ids):
        raise ValueError(f"`k` must be an integer in [1, {len(ids)}] (the candidates), got {k!r}.")
    max_k = len(ids) if max_k is None else max_k
    if not isinstance(max_k, int) or not k <= max_k <= len(ids):
        raise ValueError(f"`max_k` must be an integer in [{k}, {len(ids)}], got {max_k!r}.")
    query_names = set(query_tower.input)
    features = [f for f in features_from_config(spec["features"]) if f.name in query_names]
    vocabulary = spec["preprocessing"][candidate_feature]["vocabulary"]
    target = version_directory(output, version)

    def make_module(core):
        preprocessing = spec["preprocessing"]
        return RetrievalServingModule(
            core, features, preprocessing, embeddings, ids, vocabulary, k, max_k
        )

    top_k_signature = [
        raw_input_signature(features),
        tf.TensorSpec([], tf.int32, name="k"),
        tf.TensorSpec([None, None], tf.string, name="exclude"),
    ]
    metadata = {"kind": "retrieval", "k": k, "max_k": max_k}
    return save_serving(
        query_tower,
        make_module,
        features,
        target,
        metadata,
        extra_signatures={"top_k": ("top_k", top_k_signature)},
    )


def _check_model_inputs(
    model: keras.Model, features: Sequence[FeatureSpec | dict], preprocessing: dict
):
    expected = {f.name for f in features}
    if isinstance(model.input, dict):
        names = set(model.input)
    else:
        names = {tensor.name for tensor in keras.tree.flatten(model.inputs)}
    if names != expected:
        raise ValueError(
            f"The model's inputs {sorted(names)} differ from the spec's features "
            f"{sorted(expected)}; export the model with the preprocessing.json of its own run."
        )
    check_vocabularies(model, features, preprocessing)


def check_vocabularies(
    model: keras.Model, features: Sequence[FeatureSpec | dict], preprocessing: dict
) -> None:
    """Every embedding table of `model` must have one row per id of its vocabulary (2 + size).

    A vocabulary of another run would look up the wrong rows (or past the end of the table).
    """
    from keras_unimixer.layers import FeatureTokenizer

    without = sorted(
        f.name
        for f in features
        if f.kind != NUMERIC and "vocabulary" not in preprocessing.get(f.name, {})
    )
    if without:
        raise ValueError(
            f"Features {without} have no vocabulary (hashed, or generated integer ids): export "
            "builds vocabulary lookups into the graph and has no in-graph version of the "
            "training hash yet; give these features a vocabulary (min_count or vocabulary_file) "
            "to export the model."
        )
    vocabularies = {
        f.name: len(preprocessing[f.name]["vocabulary"]) + NUM_RESERVED_IDS
        for f in features
        if f.kind != NUMERIC and f.name in preprocessing
    }
    problems = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not isinstance(layer, FeatureTokenizer):
            continue
        for feature in layer.features:
            table = getattr(layer, f"{feature.name}_embedding", None)
            if table is None or feature.name not in vocabularies:
                continue
            rows = int(table.shape[0])
            if rows != vocabularies[feature.name]:
                problems.append(
                    f"{feature.name}: {vocabularies[feature.name]} ids in preprocessing.json, "
                    f"{rows} rows in the model's table {table.path}"
                )
    if problems:
        raise ValueError(
            "The vocabularies do not match the model's embedding tables ("
            + "; ".join(sorted(set(problems)))
            + "): export the model with the preprocessing.json of the run that trained it."
        )


def example_request(spec: dict, batch_size: int = 4) -> dict:
    """A raw request built from the vocabularies: known values, one unseen value, one missing."""
    request = {}
    for feature in features_from_config(spec["features"]):
        entry = spec["preprocessing"][feature.name]
        if feature.kind == NUMERIC:
            values = [entry["mean"] + entry["std"] * (row - 1) for row in range(batch_size)]
            request[feature.name] = np.asarray(values, dtype="float32")
            continue
        vocabulary = [str(v) for v in entry["vocabulary"]] or ["?"]
        values = [vocabulary[row % len(vocabulary)] for row in range(batch_size)]
        if batch_size > 2:
            values[-1] = "__unseen_value__"
            values[-2] = ""
        if feature.kind == MULTI_CATEGORICAL:
            width = feature.max_length
            request[feature.name] = np.asarray(
                [[v] + [""] * (width - 1) for v in values], dtype=object
            )
        else:
            request[feature.name] = np.asarray(values, dtype=object)
    return request


def write_warmup_requests(
    path: str | Path, request: dict, model_name: str, num_records: int = 10
) -> None:
    """TF Serving warm-up file: `num_records` PredictLog records of `request` (TFRecord)."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    predict = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SIGNATURE)
    )
    for name, values in request.items():
        predict.inputs[name].CopyFrom(tf.make_tensor_proto(_tensor_values(values)))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=predict)
    )
    with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(num_records):
            writer.write(log.SerializeToString())


def _tensor_values(values: ArrayLike):
    values = np.asarray(values)
    if values.dtype == object:
        return tf.constant(values.astype(str).tolist(), tf.string)
    return tf.constant(values)


class ServingFunction:
    """`serving_default` of an exported version, with requests checked feature by feature.

    TF Serving and the raw signature report a bad request by argument position; this wrapper
    names the feature: a missing or unknown feature, a wrong dtype (ids must be sent as strings,
    numeric values as floats) or a wrong rank raise `ValueError` naming it. Values unseen in
    training are valid and go to the out-of-vocabulary id inside the graph.

    Args:
        path: a version directory written by `export_savedmodel` or `export_retrieval`.
        signature: the signature to call (`"serving_default"`; `"top_k"` of a retrieval export).

    Call arguments:
        request: dict of feature name to array-like (numpy, lists, tensors), plus the
            signature's other inputs (`k`, `exclude` for `top_k`).
    """

    def __init__(self, path: str | Path, signature: str = SIGNATURE):
        self.path = Path(path)
        signatures = tf.saved_model.load(str(self.path)).signatures
        if signature not in signatures:
            raise ValueError(
                f"{self.path} has no signature {signature!r}; it has {sorted(signatures)}."
            )
        self.function = signatures[signature]
        _, self.signature = self.function.structured_input_signature

    def __call__(self, request: dict) -> dict:
        tensors = check_request(self.signature, request)
        return {name: value.numpy() for name, value in self.function(**tensors).items()}


def check_request(signature: dict, request: dict) -> dict:
    """Tensors of `request` for `signature`, or a `ValueError` naming the offending feature."""
    missing = sorted(set(signature) - set(request))
    if missing:
        raise ValueError(f"Request is missing feature(s) {missing}; expected {sorted(signature)}.")
    unknown = sorted(set(request) - set(signature))
    if unknown:
        raise ValueError(f"Request has unknown feature(s) {unknown}; expected {sorted(signature)}.")
    tensors = {}
    for name, spec in signature.items():
        value = request[name]
        tensor = value if isinstance(value, tf.Tensor) else tf.constant(np.asarray(value))
        if tensor.dtype != spec.dtype and not (spec.dtype.is_floating and tensor.dtype.is_floating):
            hint = " (send ids and categories as strings)" if spec.dtype == tf.string else ""
            raise ValueError(
                f"Feature {name!r} must be {spec.dtype.name}, got {tensor.dtype.name}{hint}."
            )
        if tensor.shape.rank != spec.shape.rank:
            raise ValueError(
                f"Feature {name!r} must have rank {spec.shape.rank} (shape {spec.shape}: batch"
                f"{' x values' if spec.shape.rank == 2 else ''}), got shape {tensor.shape}."
            )
        tensors[name] = tf.cast(tensor, spec.dtype)
    return tensors
