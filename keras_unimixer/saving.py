"""Loading `.keras` files with errors that say what is wrong with the file."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import keras


def check_keras_file(path: str | Path) -> Path:
    """`path` as a `Path`, or an error that names the problem: no such file, a folder, or not a
    whole `.keras` archive (truncated or corrupt; Keras itself reports those as "File not
    found")."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; a model is a .keras file.")
    if path.suffix != ".keras":
        raise ValueError(f"{path} does not end in .keras; a model is a .keras file.")
    problem = None
    if not zipfile.is_zipfile(path):
        problem = "it is not a zip archive"
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            problem = f"its zip archive is unreadable ({error})"
        else:
            if damaged is not None:
                problem = f"its member {damaged!r} is damaged"
            elif "config.json" not in names:
                problem = "it has no config.json"
    if problem:
        raise ValueError(
            f"{path} ({path.stat().st_size:,} bytes) is not a whole .keras file: {problem}. It was "
            "probably cut short while being written or copied; save or copy it again."
        )
    return path


def load_model(path: str | Path, **kwargs: Any) -> keras.Model:
    """`keras.saving.load_model(path, **kwargs)` after `check_keras_file(path)`."""
    return keras.saving.load_model(check_keras_file(path), **kwargs)
