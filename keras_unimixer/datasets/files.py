"""Locating data files: `--data-dir`, `$KERAS_UNIMIXER_DATA/<dataset>`, `../shared/data`."""

from __future__ import annotations

import os
from pathlib import Path


class DataFilesNotFound(FileNotFoundError):
    """Raised when a dataset's files are not where the loader looked; says which and where."""


def candidate_dirs(dataset: str, data_dir: str | Path | None = None) -> list[Path]:
    if data_dir is not None:
        return [Path(data_dir)]
    dirs = []
    root = os.environ.get("KERAS_UNIMIXER_DATA")
    if root:
        dirs += [Path(root) / dataset, Path(root)]
    repo_shared = Path(__file__).resolve().parents[3] / "shared" / "data" / dataset
    dirs += [Path.cwd().parent / "shared" / "data" / dataset, repo_shared]
    return dirs


def find_files(
    dataset: str, layouts: dict, data_dir: str | Path | None = None, how_to_get: str = ""
) -> tuple:
    """Return `(layout_name, directory)` of the first layout whose files all exist.

    Args:
        dataset: the dataset's folder name (e.g. "ml-100k").
        layouts: layout name -> list of file names that must all be present.
        data_dir: an explicit directory (only it is searched).
        how_to_get: appended to the error message.
    """
    searched = candidate_dirs(dataset, data_dir)
    for directory in searched:
        for layout, names in layouts.items():
            if all((directory / name).is_file() for name in names):
                return layout, directory
    expected = "; or ".join(f"{layout}: {', '.join(names)}" for layout, names in layouts.items())
    raise DataFilesNotFound(
        f"{dataset} files not found. Expected ({expected}) in one of: "
        f"{', '.join(str(d) for d in searched)}. Pass --data-dir DIR or set KERAS_UNIMIXER_DATA. "
        f"{how_to_get}"
    )
