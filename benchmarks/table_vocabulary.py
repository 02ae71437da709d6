"""Training-step cost against the vocabulary: one hashed feature of 10^4 and of 10^8 buckets.

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

The same model (a FeatureTokenizer with one hashed id feature of `--buckets` rows x width 4 and a
20-value categorical feature, field tokens, an MLP of 64 units and a logit) and the same batch,
trained with Adam for the dense part and `--table-optimizer` (`rowwise_adagrad`, row-sparse; or
`adam_dense`, Keras' Adam on the whole model, the old behaviour) for the tables. Each
(backend, buckets) cell runs in a process of its own, so that its peak RSS is its own:
examples/s over `--steps` batches (the median of 3 such epochs after a warm-up one), and the
peak RSS against the table plus its optimizer slots. Then, apart from the model, the table
optimizer's update alone (`row update ms`: gather, rule and scatter of a batch's distinct rows, on
a table of the same size, compiled): the part of a step whose cost can grow with the vocabulary,
since random rows of a large table miss the caches. Writes table_vocabulary.md and
table_vocabulary.json.

`--allocators system,reuse` times each cell under the C allocator's settings as found and as the
command line sets them (`keras_unimixer.utils.allocator`), each against its own smallest vocabulary.

Usage:
    .venv/bin/python benchmarks/table_vocabulary.py --backends tensorflow,jax \\
        --buckets 10000,100000000 --write-results
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

from results_files import add_write_results, current_commit, results_path

WIDTH = 4
REPEATS = 3
# The C allocator's settings of a cell's process: `system` as the process finds them, `reuse` as
# the command line sets them (`keras_unimixer.utils.allocator`).
ALLOCATORS = ("system", "reuse")
# `keras_unimixer.utils.allocator.ALLOCATOR_VARIABLE`; this process does not import the package,
# whose Keras would take the GPU's memory before the cells run.
ALLOCATOR_VARIABLE = "KERAS_UNIMIXER_ALLOCATOR"


def cell_environment(backend: str, allocator: str, environment: dict) -> dict:
    """The environment of a cell's process: its backend, and its allocator for the cell to set
    when it starts (`restart_reusing_freed_memory`, which a `GLIBC_TUNABLES` of its own would
    turn off)."""
    if allocator not in ALLOCATORS:
        raise ValueError(f"allocator {allocator!r} is not one of {list(ALLOCATORS)}")
    cell = {**environment, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cell.pop("GLIBC_TUNABLES", None)
    cell[ALLOCATOR_VARIABLE] = allocator
    return cell


def run_cell(buckets: int, steps: int, batch_size: int, table_optimizer: str) -> dict:
    import keras
    import numpy as np

    from keras_unimixer.features import FeatureSpec
    from keras_unimixer.layers import FeatureTokenizer
    from keras_unimixer.optimizers import SplitOptimizer
    from keras_unimixer.table_optimizer import RowSparseTableOptimizer, enable_row_sparse_steps

    keras.utils.set_random_seed(0)
    features = [
        FeatureSpec("uid", "categorical", buckets + 2),
        FeatureSpec("kind", "categorical", 22),
    ]
    inputs = {spec.name: keras.Input((), dtype="int32", name=spec.name) for spec in features}
    tokens = FeatureTokenizer(features, WIDTH, token_dim=WIDTH, mode="field", project=False)(inputs)
    hidden = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(tokens))
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    if table_optimizer == "adam_dense":
        optimizer = keras.optimizers.Adam(1e-3)
    else:
        tables = RowSparseTableOptimizer(table_optimizer, learning_rate=0.05)
        optimizer = SplitOptimizer(keras.optimizers.Adam(1e-3), tables)
    model.compile(optimizer, keras.losses.BinaryCrossentropy(from_logits=True))
    enable_row_sparse_steps(model)  # JAX: row gradients (TensorFlow's are row-sparse already)
    rng = np.random.default_rng(0)
    rows = steps * batch_size
    x = {
        "uid": rng.integers(2, buckets + 2, rows).astype("int32"),
        "kind": rng.integers(2, 22, rows).astype("int32"),
    }
    y = (x["kind"] % 2).astype("float32")
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)  # compile, warm
    timings = []
    for _ in range(REPEATS):  # this machine's timings are noisy: the median of a few epochs
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        timings.append(time.perf_counter() - start)
    seconds = sorted(timings)[len(timings) // 2]
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    slot_floats = {
        "rowwise_adagrad": buckets + 2,
        "adagrad": (buckets + 2) * WIDTH,
        "adam_dense": 2 * (buckets + 2) * WIDTH,
    }.get(table_optimizer, 0)
    return {
        "backend": keras.backend.backend(),
        "buckets": buckets,
        "table_optimizer": table_optimizer,
        "batch_size": batch_size,
        "steps": steps,
        "examples_per_second": rows / seconds,
        "step_ms": 1000 * seconds / steps,
        "peak_rss_mib": peak_rss_mib,
        "table_and_slots_mib": 4 * ((buckets + 2) * WIDTH + slot_floats) / 2**20,
        "row_update_ms": (
            None
            if table_optimizer == "adam_dense"
            else row_update_ms(buckets + 2, batch_size, table_optimizer)
        ),
    }


def row_update_ms(rows: int, batch_size: int, rule: str, updates: int = 50) -> float:
    """Milliseconds of one row-sparse update of a `(rows, WIDTH)` table by `rule` for a random
    batch of `batch_size` ids, compiled, as `fit` makes it: under JAX `stateless_apply` with the
    `RowGradient` of the batch's distinct ids (`distinct_ids`, inside the compiled update; table
    and slots donated), under TensorFlow `apply` with the batch's `tf.IndexedSlices` (whose
    duplicate ids the optimizer combines). The median of 5 passes over `updates` batches, after
    one."""
    import keras
    import numpy as np

    from keras_unimixer.table_optimizer import (
        RowGradient,
        RowSparseTableOptimizer,
        distinct_ids,
    )

    table = keras.Variable(keras.initializers.Zeros()((rows, WIDTH)), name="table")
    optimizer = RowSparseTableOptimizer(rule, learning_rate=0.05)
    optimizer.build([table])
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, rows, batch_size).astype("int32") for _ in range(updates)]
    grad = np.ones((batch_size, WIDTH), "float32")
    if keras.backend.backend() == "jax":
        import jax

        def update(optimizer_values, table_value, ids):
            unique, _, valid = distinct_ids(ids)  # as `fit`'s row-sparse step does
            gradient = RowGradient(unique, grad, valid)
            return optimizer.stateless_apply(optimizer_values, [gradient], [table_value])

        step = jax.jit(update, donate_argnums=(0, 1))
        state = {"optimizer": [v.value for v in optimizer.variables], "table": table.value}

        def run_pass():
            for ids in batches:
                (state["table"],), state["optimizer"] = step(
                    state["optimizer"], state["table"], ids
                )
            state["table"].block_until_ready()

    else:
        import tensorflow as tf

        @tf.function  # without XLA, as Keras' `fit` compiles this model on the CPU
        def step(ids):
            optimizer.apply([tf.IndexedSlices(tf.constant(grad), ids, (rows, WIDTH))], [table])

        def run_pass():  # each call returns when its updates are done
            for ids in batches:
                step(ids)

    run_pass()
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        run_pass()
        timings.append(1000 * (time.perf_counter() - start) / updates)
    return sorted(timings)[2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument(
        "--allocators",
        default="system",
        help="comma-separated C allocator settings, each its own cells: " + ", ".join(ALLOCATORS),
    )
    parser.add_argument("--buckets", default="10000,100000000")
    parser.add_argument("--table-optimizer", default="rowwise_adagrad")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument(
        "--rounds", type=int, default=1, help="processes per cell, in turns; the median is kept"
    )
    parser.add_argument("--cell", default=None, help="(internal) BACKEND,BUCKETS: one cell")
    add_write_results(parser)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.cell:
        from keras_unimixer.utils.allocator import allocator_setting, restart_reusing_freed_memory

        restart_reusing_freed_memory()  # unless the cell's allocator is `system`
        _, buckets = args.cell.split(",")
        result = run_cell(int(buckets), args.steps, args.batch_size, args.table_optimizer)
        result["allocator_setting"] = allocator_setting()
        print("RESULT " + json.dumps(result), flush=True)
        return
    allocators = args.allocators.split(",")
    unknown = sorted(set(allocators) - set(ALLOCATORS))
    if unknown:
        parser.error(f"--allocators: {unknown} not among {list(ALLOCATORS)}")
    cells = [
        (b, a, n)
        for b in args.backends.split(",")
        for a in allocators
        for n in args.buckets.split(",")
    ]
    runs = {cell: [] for cell in cells}
    for _ in range(args.rounds):  # the cells take turns, so that machine drift hits all alike
        for backend, allocator, buckets in cells:
            command = [
                sys.executable,
                __file__,
                "--cell",
                f"{backend},{buckets}",
                "--steps",
                str(args.steps),
                "--batch-size",
                str(args.batch_size),
                "--table-optimizer",
                args.table_optimizer,
            ]
            environment = cell_environment(backend, allocator, dict(os.environ))
            done = subprocess.run(command, capture_output=True, text=True, env=environment)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not lines:
                raise RuntimeError(
                    f"cell {backend},{allocator},{buckets} failed:\n{done.stderr[-3000:]}"
                )
            result = {**json.loads(lines[-1][len("RESULT ") :]), "allocator": allocator}
            runs[(backend, allocator, buckets)].append(result)
            print(result, flush=True)
    write([median_run(runs[cell]) for cell in cells], args)


def median_run(results: list) -> dict:
    """One cell's processes summed up: the median examples/s (its run's step time and row update
    time with it), the largest peak RSS, and every process's examples/s and row update time."""
    ordered = sorted(results, key=lambda r: r["examples_per_second"])
    median = dict(ordered[len(ordered) // 2])
    median["peak_rss_mib"] = max(r["peak_rss_mib"] for r in results)
    median["examples_per_second_runs"] = [r["examples_per_second"] for r in results]
    median["row_update_ms_runs"] = [r.get("row_update_ms") for r in results]
    return median


def paired_ratios(result: dict, smallest: dict) -> list:
    """examples/s of `result` over `smallest`'s, round by round: the processes of one round ran
    one after the other, so a slower or faster spell of the machine hits both alike."""
    return [
        mine / theirs
        for mine, theirs in zip(
            result["examples_per_second_runs"], smallest["examples_per_second_runs"], strict=True
        )
    ]


def smallest_vocabulary(result: dict, results: list) -> dict:
    """The result of `results` with the fewest buckets among those of `result`'s backend and
    allocator: what `result` is compared with."""
    return min(
        (
            r
            for r in results
            if r["backend"] == result["backend"] and r["allocator"] == result["allocator"]
        ),
        key=lambda r: r["buckets"],
    )


def _paired(ratios: list) -> str:
    ordered = sorted(ratios)
    return f"{ordered[len(ordered) // 2]:.2f}x ({ordered[0]:.2f}-{ordered[-1]:.2f})"


def _milliseconds(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def write(results, args) -> None:
    commit = current_commit()
    lines = [
        "# Training step against the vocabulary (one hashed feature, width 4)",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- Date: {datetime.date.today()}; commit {commit}",
        f"- Command: `python benchmarks/table_vocabulary.py {' '.join(sys.argv[1:])}`",
        f"- Batch {args.batch_size}; an epoch of {args.steps} steps, timed {REPEATS} times after a "
        f"warm-up epoch (median); {args.rounds} process(es) per cell, the cells in turns, the "
        "median process kept (peak RSS: the largest); "
        "tables: " + args.table_optimizer + ", dense part: Adam",
        "- `row update ms`: the table optimizer's update alone, in the same process after the "
        "timed epochs, of a batch's distinct rows on a table of the same size (median of 5 "
        "passes over 50 batches): the part of the step that reads and writes table rows",
        "- `paired by round`: the ratio to the smallest vocabulary in each round (processes run "
        "one after the other), median (min-max) over the rounds",
        "- `allocator`: the C allocator's settings of the cell's processes: `system` as found, "
        "`reuse` as the command line sets them (`keras_unimixer.utils.allocator`); each "
        "vocabulary is compared with the smallest one of the same backend and allocator",
        "",
        "| backend | allocator | buckets | table optimizer | examples/s | step ms "
        "| vs smallest vocabulary | paired by round | row update ms | peak RSS MiB "
        "| table + slots MiB "
        "| RSS - (table + slots) MiB |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        smallest = smallest_vocabulary(result, results)
        ratio = result["examples_per_second"] / smallest["examples_per_second"]
        lines.append(
            f"| {result['backend']} | {result['allocator']} | {result['buckets']:,} | "
            f"{result['table_optimizer']} | "
            f"{result['examples_per_second']:,.0f} | {result['step_ms']:.1f} | {ratio:.2f}x | "
            f"{_paired(paired_ratios(result, smallest))} | "
            f"{_milliseconds(result.get('row_update_ms'))} | "
            f"{result['peak_rss_mib']:,.0f} | {result['table_and_slots_mib']:,.0f} | "
            f"{result['peak_rss_mib'] - result['table_and_slots_mib']:,.0f} |"
        )
    markdown = "\n".join(lines) + "\n"
    results_path("table_vocabulary.md", args.write_results).write_text(markdown)
    results_path("table_vocabulary.json", args.write_results).write_text(
        json.dumps(results, indent=1) + "\n"
    )
    print(markdown)


if __name__ == "__main__":
    main()
