"""A revision module loaded by file name, for revisions that build on an earlier one's
statements (alembic loads `versions/` itself; its files are not importable by module name)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

VERSIONS = Path(__file__).with_name("versions")


def load_revision(filename: str) -> ModuleType:
    """`versions/<filename>` as a module of its own (not registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(
        f"dashgraph_revision_{filename.split('_', 1)[0]}", VERSIONS / filename
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
