"""`keras_unimixer.utils.allocator`: when a process restarts with the allocator settings."""

import os
import sys
from pathlib import Path

import pytest

from keras_unimixer.utils import allocator


@pytest.fixture
def restarts(monkeypatch):
    """The `os.execve` calls that `restart_reusing_freed_memory` makes, instead of making them."""
    calls = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    monkeypatch.setattr(allocator, "has_glibc", lambda: True)
    monkeypatch.setattr(sys, "orig_argv", ["python3", "-u", "-m", "keras_unimixer", "train"])
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv(allocator.ALLOCATOR_VARIABLE, raising=False)
    return calls


def test_the_process_restarts_with_the_same_arguments_and_the_tunables(restarts, monkeypatch):
    monkeypatch.setenv("SOME_SETTING", "kept")
    allocator.restart_reusing_freed_memory()
    [(path, argv, env)] = restarts
    assert path == sys.executable
    assert argv == [sys.executable, "-u", "-m", "keras_unimixer", "train"]
    assert env["GLIBC_TUNABLES"] == allocator.REUSE_FREED_MEMORY
    assert env["SOME_SETTING"] == "kept"


@pytest.mark.parametrize(
    "variable, value",
    [
        ("GLIBC_TUNABLES", allocator.REUSE_FREED_MEMORY),  # restarted already: no loop
        ("GLIBC_TUNABLES", "glibc.malloc.arena_max=2"),  # the user's own settings win
        (allocator.ALLOCATOR_VARIABLE, "system"),
    ],
)
def test_no_restart_where_settings_are_in_force_or_refused(restarts, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    allocator.restart_reusing_freed_memory()
    assert restarts == []


def test_no_restart_without_glibc(restarts, monkeypatch):
    monkeypatch.setattr(allocator, "has_glibc", lambda: False)
    allocator.restart_reusing_freed_memory()
    assert restarts == []
    assert allocator.allocator_setting() == "system"


def test_an_unknown_choice_is_refused_with_the_valid_ones(restarts, monkeypatch):
    monkeypatch.setenv(allocator.ALLOCATOR_VARIABLE, "jemalloc")
    with pytest.raises(ValueError, match=r"KERAS_UNIMIXER_ALLOCATOR='jemalloc'.*'reuse', 'system'"):
        allocator.restart_reusing_freed_memory()
    assert restarts == []


def test_the_setting_in_force_is_named(monkeypatch):
    monkeypatch.setattr(allocator, "has_glibc", lambda: True)
    monkeypatch.setenv("GLIBC_TUNABLES", allocator.REUSE_FREED_MEMORY)
    assert allocator.allocator_setting() == "reuse freed memory"
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert allocator.allocator_setting() == "GLIBC_TUNABLES=glibc.malloc.arena_max=2"
    monkeypatch.delenv("GLIBC_TUNABLES")
    assert allocator.allocator_setting() == "system"


def test_the_docs_show_the_settings_in_force():
    docs = Path(__file__).resolve().parents[2] / "docs" / "training.md"
    assert f"export GLIBC_TUNABLES={allocator.REUSE_FREED_MEMORY}\n" in docs.read_text()
