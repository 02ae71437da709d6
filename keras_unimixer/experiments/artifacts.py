"""Run artefacts that cannot be half-written or mismatched.

- Every file is written to a temporary name in its folder and renamed into place (`os.replace` is
  atomic), so a killed process leaves the old file or the new one, never a truncated one.
- A checkpoint is a folder `checkpoint/epoch-NNNN/` (model with optimizer state, run state, and
  the best weights when that epoch was the best) written under a temporary name, completed by a
  `COMPLETE` marker, then renamed: `latest_checkpoint` only ever sees whole ones.
- One writer per run folder: `run_lock` holds an exclusive lock on `<folder>/.lock` (an OS file
  lock, released by the kernel when its process ends, however it ends), so a second `train` on
  the same folder is refused with the holder's process id, and a lock left by a killed process
  is taken over.
- `run.json` binds a finished run's files: one run id and the SHA-256 of `model.keras`,
  `preprocessing.json` and `config.json`; `verify_run` says which file disagrees.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path

logger = logging.getLogger("keras_unimixer.experiments.artifacts")
MANIFEST_FILE = "run.json"
LOCK_FILE = ".lock"
COMPLETE_MARKER = "COMPLETE"
BOUND_FILES = ("model.keras", "preprocessing.json", "config.json")
_CHECKPOINT_NAME = re.compile(r"^epoch-(\d{4,})$")


class RunLocked(RuntimeError):
    """Another process is writing to the run folder."""


@contextlib.contextmanager
def run_lock(directory):
    """Hold the run folder `directory` (made if missing) for this process, exclusively.

    Raises `RunLocked` naming the holder's process id when another process holds it. The lock
    is the OS's (`fcntl.flock`): a process killed while holding it releases it, and the next
    writer says that it takes over a stale lock. Where `fcntl` does not exist (Windows) no lock
    is taken and a warning says so.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        logger.warning(
            "No fcntl on this platform: %s is not locked against a second writer.", directory
        )
        yield
        return
    path = directory / LOCK_FILE
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunLocked(
                f"{directory} is in use by another run (process {holder}, lock {path}); wait for "
                "it to finish or choose another --output."
            ) from None
        handle.seek(0)
        stale = handle.read().strip()
        if stale and stale != str(os.getpid()):
            logger.warning(
                "Taking over the lock of process %s on %s, which no longer runs.", stale, directory
            )
        _write_holder(handle, str(os.getpid()))
        try:
            yield
        finally:
            _write_holder(handle, "")
    finally:
        handle.close()  # closing the file releases the lock


def _write_holder(handle, text: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(text)
    handle.flush()


def _temporary(path: Path) -> Path:
    # Same folder (so the rename stays on one file system) and same suffix (Keras checks it).
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def atomic_write_text(path, text: str) -> Path:
    path = Path(path)
    temporary = _temporary(path)
    with open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def atomic_write_json(path, value) -> Path:
    return atomic_write_text(path, json.dumps(value, indent=1, allow_nan=False))


def atomic_save(path, save) -> Path:
    """`save(temporary_path)` then rename to `path` (e.g. `lambda p: model.save(p)`)."""
    path = Path(path)
    temporary = _temporary(path)
    try:
        save(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def checkpoint_name(sequence: int) -> str:
    return f"epoch-{sequence:04d}"


def write_checkpoint(directory, sequence: int, model, state: dict, best: bool) -> Path:
    """Write `directory/epoch-<sequence>/` whole or not at all; returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / checkpoint_name(sequence)
    temporary = directory / f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"
    temporary.mkdir()
    try:
        model.save(temporary / "model.keras")
        if best:
            model.save_weights(temporary / "best.weights.h5")
        (temporary / "state.json").write_text(json.dumps(state, indent=1))
        (temporary / COMPLETE_MARKER).write_text("")
        if final.exists():  # a rerun of this epoch after a kill: replace it
            shutil.rmtree(final)
        os.replace(temporary, final)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
    return final


def complete_checkpoints(directory) -> list[Path]:
    """Whole checkpoint folders, oldest first (unfinished temporary ones are ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [
        path
        for path in directory.iterdir()
        if _CHECKPOINT_NAME.match(path.name) and (path / COMPLETE_MARKER).is_file()
    ]
    return sorted(found, key=lambda path: int(_CHECKPOINT_NAME.match(path.name).group(1)))


def latest_checkpoint(directory) -> tuple[Path, dict] | None:
    """The newest whole checkpoint and its state, or None."""
    checkpoints = complete_checkpoints(directory)
    if not checkpoints:
        return None
    latest = checkpoints[-1]
    return latest, json.loads((latest / "state.json").read_text())


def prune_checkpoints(directory, keep: set[str]) -> None:
    """Delete whole checkpoints not named in `keep`, and leftovers of interrupted writes."""
    directory = Path(directory)
    for path in directory.iterdir():
        leftover = path.name.startswith(".") and path.name.endswith(".tmp")
        if leftover or (_CHECKPOINT_NAME.match(path.name) and path.name not in keep):
            shutil.rmtree(path, ignore_errors=True)


def file_digest(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(output, run_id: str) -> Path:
    """Bind the finished run's files: `run.json` with the run id and each file's SHA-256."""
    output = Path(output)
    files = {name: file_digest(output / name) for name in BOUND_FILES}
    return atomic_write_json(output / MANIFEST_FILE, {"run_id": run_id, "sha256": files})


def verify_run(output, files: dict | None = None) -> str | None:
    """Check a run folder's files against its `run.json`; returns the run id (None: no manifest).

    Args:
        output: the run folder.
        files: optional overrides `{bound name: path}` (e.g. a preprocessing.json given apart).

    Raises:
        ValueError: naming every file whose contents differ from the run's record.
    """
    output = Path(output)
    manifest_path = output / MANIFEST_FILE
    if not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    paths = {name: output / name for name in BOUND_FILES}
    paths.update({name: Path(path) for name, path in (files or {}).items()})
    differing = [
        f"{paths[name]} (expected sha256 {expected[:12]}...)"
        for name, expected in manifest["sha256"].items()
        if not paths[name].is_file() or file_digest(paths[name]) != expected
    ]
    if differing:
        raise ValueError(
            f"These files do not belong to run {manifest['run_id']} recorded in {manifest_path}: "
            f"{'; '.join(differing)}. A model must be served with the preprocessing of the run "
            "that trained it: retrain, or export the files of one run."
        )
    return manifest["run_id"]


def new_run_id() -> str:
    return uuid.uuid4().hex
