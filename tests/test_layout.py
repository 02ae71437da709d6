"""The package's imports flow one way: the library (features, layers, models, tasks, export, ...)
below the application (training runs, command line, scaling ladders, tuning)."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent
PACKAGE = Path(__file__).resolve().parents[1] / "keras_unimixer"
# Everything that runs experiments lives in one subpackage (and the `python -m` entry point).
APPLICATION = ("keras_unimixer.experiments", "keras_unimixer.__main__")
# What the building blocks may not import: no data loader, and nothing of the application.
BUILDING_BLOCKS = {
    "layers": ("keras_unimixer.datasets", *APPLICATION),
    "models": ("keras_unimixer.datasets", *APPLICATION),
    "tasks": ("keras_unimixer.datasets", *APPLICATION),
}


def imported_modules(path: Path) -> set[str]:
    """Every `keras_unimixer` module a file imports, at the top or inside functions."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("keras_unimixer")}


def _forbidden(module: str, prefixes) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("subpackage", sorted(BUILDING_BLOCKS))
def test_building_blocks_import_no_loader_and_no_application_module(subpackage):
    offenders = sorted(
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in (PACKAGE / subpackage).rglob("*.py")
        for module in imported_modules(path)
        if _forbidden(module, BUILDING_BLOCKS[subpackage])
    )
    assert offenders == []


def test_the_library_imports_nothing_of_the_application():
    library = [
        path
        for path in PACKAGE.rglob("*.py")
        if not _forbidden(_module_name(path), APPLICATION) and path.name != "__init__.py"
    ]
    offenders = sorted(
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in library
        for module in imported_modules(path)
        if _forbidden(module, APPLICATION)
    )
    assert offenders == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
