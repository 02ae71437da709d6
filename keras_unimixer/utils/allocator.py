"""The C memory allocator's settings for training processes on the CPU.

glibc's `malloc` hands every freed block over 32 MiB back to the kernel and serves each thread from
its own arena. XLA's CPU runtime (JAX) allocates a training step's large temporaries afresh on every
step, so each step faults all of them in again, page by page: an element-wise pass over a new
64 MiB array takes 21 ms where the same pass in place takes 2.6 ms, and a RankMixer training step
(16 tokens of 256, batch 4,096, JAX, 2 cores) spends about a quarter of its time so
(`benchmarks/results/mixer_speed_jax.md`). With every block served from one heap that is never
trimmed (`REUSE_FREED_MEMORY`), freed memory is reused instead. TensorFlow pools its own CPU
memory and is unaffected.

glibc reads these settings only when a process starts, so `restart_reusing_freed_memory` starts
the process again (`os.execve`, same process id and arguments) with them set. The command line does
so at start-up; a script can call it first thing, or its user can export the variable before
Python starts (`GLIBC_TUNABLES` set to the value of `REUSE_FREED_MEMORY`, as `docs/training.md`
shows).

The same settings ask for the heap in transparent huge pages (`glibc.malloc.hugetlb=1`: 2 MiB
pages where the kernel offers them, i.e. its `transparent_hugepage` mode is `madvise` or
`always`). A row-sparse step reads and writes a few thousand random rows of tables that may hold
10^8; with 4 KiB pages nearly every row also misses the TLB. With one 10^8-row table under JAX a
`fit` step took 1.29 ms instead of 1.61 ms (median of 5 paired processes, faster in each pair;
`benchmarks/results/table_vocabulary_huge_pages.md`); the mixer steps did not change.

The price is memory: a process keeps its peak heap until it exits. `KERAS_UNIMIXER_ALLOCATOR=system`
keeps the system's settings, and so does any `GLIBC_TUNABLES` already set.

Nothing here imports Keras: the command line calls it before the backend loads.
"""

from __future__ import annotations

import os
import platform
import sys

REUSE_FREED_MEMORY = (
    "glibc.malloc.mmap_max=0"  # no block is mapped on its own, so none is unmapped when freed
    ":glibc.malloc.trim_threshold=68719476736"  # the heap's top is never given back (64 GiB)
    ":glibc.malloc.arena_max=1"  # one heap for all threads (XLA's worker threads included)
    ":glibc.malloc.hugetlb=1"  # the heap in transparent huge pages (fewer TLB misses)
)
ALLOCATOR_VARIABLE = "KERAS_UNIMIXER_ALLOCATOR"
_ALLOCATOR_CHOICES = ("reuse", "system")


def has_glibc() -> bool:
    """Whether this process runs on glibc (the only C library whose tunables are set here)."""
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def allocator_setting() -> str:
    """How this process's allocator is set: `"reuse freed memory"` (`REUSE_FREED_MEMORY`),
    `"system"`, or the other `GLIBC_TUNABLES` value in force."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if not has_glibc() or not tunables:
        return "system"
    return "reuse freed memory" if tunables == REUSE_FREED_MEMORY else f"GLIBC_TUNABLES={tunables}"


def restart_reusing_freed_memory() -> None:
    """Start this process again with `GLIBC_TUNABLES=REUSE_FREED_MEMORY`, unless it runs with them
    already, is not on glibc, has other `GLIBC_TUNABLES`, or `KERAS_UNIMIXER_ALLOCATOR=system`.

    Call it before anything that the restart would repeat (it returns only where it does not
    restart). `sys.orig_argv` restarts `python -m module`, scripts and console scripts alike.
    """
    choice = os.environ.get(ALLOCATOR_VARIABLE, "reuse")
    if choice not in _ALLOCATOR_CHOICES:
        raise ValueError(
            f"{ALLOCATOR_VARIABLE}={choice!r} is not one of {list(_ALLOCATOR_CHOICES)}."
        )
    if choice == "system" or not has_glibc() or "GLIBC_TUNABLES" in os.environ:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    environment = {**os.environ, "GLIBC_TUNABLES": REUSE_FREED_MEMORY}
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)
