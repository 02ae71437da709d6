"""Where a benchmark writes its results: the committed `benchmarks/results/` only when asked.

Every benchmark takes `--write-results`: with it, the committed file under `benchmarks/results/`
is rewritten (what a results commit does); without it, the same file goes to
`runs/benchmarks/` (git-ignored), so a rerun to look at numbers changes nothing committed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SCRATCH = Path(__file__).resolve().parents[1] / "runs" / "benchmarks"
FLAG = "--write-results"


def add_write_results(parser) -> None:
    parser.add_argument(
        FLAG,
        action="store_true",
        help="rewrite the committed file in benchmarks/results/ (default: runs/benchmarks/)",
    )


def results_path(name: str, write_results: bool | None = None) -> Path:
    """The path a benchmark writes `name` (relative to benchmarks/results/) to; `write_results`
    None reads `--write-results` from the command line."""
    if write_results is None:
        write_results = FLAG in sys.argv
    path = (RESULTS if write_results else SCRATCH) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def current_commit() -> str:
    """The repository's short HEAD commit, for a results file's header ("unknown" outside git)."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=RESULTS.parent,
    )
    return done.stdout.strip() or "unknown"
