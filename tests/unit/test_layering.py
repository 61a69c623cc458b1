"""Pure image code stands alone: nothing under imaging/ imports the app side."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_SIDE = ("streams", "agents", "services", "infra", "faust", "aiokafka", "boto3", "botocore",
            "aiohttp", "asyncmy", "obstore")
#: Pure data modules outside imaging/ that pure code may read (no I/O but package files).
PURE = {"services.model_catalog"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_imaging_imports_nothing_from_the_app_side():
    offending = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imports(path)
            if name.split(".")[0] in APP_SIDE and name not in PURE)
        for path in sorted((ROOT / "imaging").rglob("*.py"))
    }
    assert {path: names for path, names in offending.items() if names} == {}
