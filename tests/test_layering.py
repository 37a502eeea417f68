"""Dependencies point inward: the core imports no transport."""

from __future__ import annotations

import ast
from pathlib import Path

import iris_core

FORBIDDEN = {
    "grpc",
    "grpc_status",
    "grpc_health",
    "grpc_reflection",
    "fastapi",
    "starlette",
    "mcp",
    "mcp_types",
    "uvicorn",
    "iris_grpc",
    "rest_gateway",
    "mcp_adapter",
}


def imported_roots(source: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_iris_core_imports_no_transport() -> None:
    package = Path(iris_core.__file__).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 10
    offenders = {str(p.relative_to(package)): sorted(imported_roots(p) & FORBIDDEN) for p in sources}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import grpc\nfrom mcp.server import Server\n")
    assert imported_roots(bad) & FORBIDDEN == {"grpc", "mcp"}


def test_the_adapters_reach_iris_only_through_grpc() -> None:
    import mcp_adapter
    import rest_gateway

    for package in (Path(mcp_adapter.__file__).parent, Path(rest_gateway.__file__).parent):
        users = [p.name for p in sorted(package.rglob("*.py")) if "iris_core" in imported_roots(p)]
        assert users == [], f"{package.name} imports iris_core in {users}"
