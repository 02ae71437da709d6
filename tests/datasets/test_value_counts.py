from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from keras_unimixer.datasets import stream
from keras_unimixer.datasets.value_counts import ValueCounts, string_hashes

pytestmark = pytest.mark.backend_independent


def zipf_batches(batches=20, rows=2000, seed=0):
    rng = np.random.default_rng(seed)
    return [
        [f"v{x}" if x % 97 else "" for x in rng.zipf(1.3, rows)] + [None] for _ in range(batches)
    ]


def expected(batches, min_count):
    counts = Counter(v for batch in batches for v in batch if v)
    kept = sorted(v for v, c in counts.items() if c >= min_count)
    return kept, len(counts) - len(kept)


@pytest.mark.parametrize("max_values", [10**9, 300, 1])
def test_counts_are_exact_in_memory_and_when_spilled(tmp_path, max_values):
    batches = zipf_batches()
    counts = ValueCounts(max_values=max_values, partitions=7, directory=tmp_path / "spill")
    for batch in batches:
        counts.add(pa.array(batch, pa.string()))
    assert (counts.spills > 0) == (max_values < 10**9)
    for min_count in (1, 3):
        assert counts.kept(min_count) == expected(batches, min_count)
    if counts.spills:  # counts on disk: at most max_values distinct values were held at once
        assert len(list((tmp_path / "spill").glob("*.parquet"))) >= 7


def test_string_hashes_depend_on_the_value_only():
    values = ["", "a", "ab", "ba", "héllo", "a" * 300]
    hashes = string_hashes(pa.array(values))
    assert len(set(hashes.tolist())) == len(values)  # "ab" != "ba", "" hashed too
    sliced = pa.array(["zz"] + values + ["yy"]).slice(1, len(values))
    np.testing.assert_array_equal(string_hashes(sliced), hashes)
    np.testing.assert_array_equal(string_hashes(pa.array(values, pa.large_string())), hashes)
    with pytest.raises(ValueError, match="without nulls"):
        string_hashes(pa.array(["a", None]))


@pytest.mark.parametrize("argument", ["max_values", "partitions"])
def test_bad_arguments_are_named(argument):
    with pytest.raises(ValueError, match=argument):
        ValueCounts(**{argument: 0})


def test_spilled_vocabulary_pass_gives_the_same_dataset(tmp_path, monkeypatch):
    from tests.datasets.test_stream import big_toy

    in_memory = big_toy(tmp_path, users=4000)
    made = []

    def recorded(max_values):
        made.append(ValueCounts(max_values, partitions=3))
        return made[-1]

    monkeypatch.setattr(stream, "ValueCounts", recorded)
    monkeypatch.setattr(stream, "DEFAULT_MEMORY_VALUES", 1)  # the floor: 1024 values per feature
    spilled = big_toy(tmp_path, users=4000)
    user_counts, tag_counts = made  # in the description's order; "item" is hashed
    assert user_counts.spills > 0 and tag_counts.spills == 0  # ~3,800 users, 4 tags
    assert spilled.preprocessing == in_memory.preprocessing
    assert spilled.report == in_memory.report
    for split in ("train", "test"):
        for got, want in zip(spilled.arrays(split), in_memory.arrays(split), strict=True):
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])
