"""The package graph: dependencies point inward, every package only to the ones it may use, and no cycle.

    iris_app ──► iris_grpc ──► iris_core ──► iris_client (the generated messages only)
       │  └────► rest_gateway ──► iris_client
       │  └────► mcp_adapter ───► iris_client
       └───────► iris_offline_model

The adapters are clients of the contract kit (``iris_client``) only; the domain sees the contract's messages
but no transport; only the composition root (``iris_app``) imports everything.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "iris_client": ROOT / "clients" / "python" / "iris_client",
    "iris_offline_model": ROOT / "iris_offline_model",
    "iris_core": ROOT / "iris_core",
    "iris_grpc": ROOT / "iris_grpc",
    "rest_gateway": ROOT / "rest_gateway",
    "mcp_adapter": ROOT / "mcp_adapter",
    "iris_app": ROOT / "iris_app",
}
MAY_IMPORT = {
    "iris_client": set(),
    "iris_offline_model": set(),
    "iris_core": {"iris_client"},
    "iris_grpc": {"iris_core", "iris_client"},
    "rest_gateway": {"iris_client"},
    "mcp_adapter": {"iris_client"},
    "iris_app": set(PACKAGES) - {"iris_app"},
}
"""First-party packages each package may import."""

TRANSPORTS = {
    "grpc",
    "grpc_status",
    "grpc_health",
    "grpc_reflection",
    "fastapi",
    "starlette",
    "mcp",
    "mcp_types",
}
TRANSPORTS |= {"uvicorn"}


def imports_of(source: Path) -> set[str]:
    """Return the absolute module names ``source`` imports (``a.b.c`` for ``from a.b import c`` too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def roots(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def sources(package: str) -> list[Path]:
    return [p for p in sorted(PACKAGES[package].rglob("*.py")) if "generated" not in p.parts]


def graph() -> dict[str, set[str]]:
    """First-party package -> the first-party packages it imports."""
    edges: dict[str, set[str]] = {}
    for package in PACKAGES:
        used = set().union(*(roots(imports_of(p)) for p in sources(package)))
        edges[package] = (used & set(PACKAGES)) - {package}
    return edges


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_each_package_imports_only_the_packages_it_may(package: str) -> None:
    assert len(sources(package)) >= 3
    assert graph()[package] <= MAY_IMPORT[package], (
        f"{package} imports {graph()[package] - MAY_IMPORT[package]}"
    )


def test_the_package_graph_has_no_cycle() -> None:
    edges = graph()
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"cycle: {' -> '.join((*path, node))}"
        if node in done:
            return
        for nxt in sorted(edges[node]):
            visit(nxt, (*path, node))
        done.add(node)

    for package in sorted(edges):
        visit(package, ())


def test_the_domain_imports_no_transport_and_only_the_contracts_messages() -> None:
    offenders: dict[str, list[str]] = {}
    for source in sources("iris_core"):
        modules = imports_of(source)
        bad = sorted(roots(modules) & TRANSPORTS)
        bad += sorted(
            m for m in modules if m.startswith("iris_client") and not m.startswith("iris_client.generated")
        )
        bad += sorted(m for m in modules if m.startswith("iris_client.generated") and "grpc" in m)
        if bad:
            offenders[str(source.relative_to(ROOT))] = bad
    assert offenders == {}


def test_the_adapters_reach_iris_only_through_grpc() -> None:
    for package in ("rest_gateway", "mcp_adapter"):
        users = [p.name for p in sources(package) if roots(imports_of(p)) & {"iris_core", "iris_grpc"}]
        assert users == [], f"{package} imports the server in {users}"


def test_only_the_composition_root_sets_up_opentelemetry() -> None:
    # The libraries trace through the OpenTelemetry API alone (a no-op until an SDK is installed), so they may
    # import ``opentelemetry``; the SDK and its exporters, which decide where spans go, are iris_app's.
    offenders = [
        f"{source.relative_to(ROOT)}: {module}"
        for package in sorted(set(PACKAGES) - {"iris_app"})
        for source in sources(package)
        for module in sorted(imports_of(source))
        if module.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))
    ]
    assert offenders == []


def test_the_contracts_messages_load_without_grpc() -> None:
    code = (
        "import sys, iris_client.generated.iris.v1.iris_pb2 as pb; "
        "print('grpc' in sys.modules, pb.TellStart.DESCRIPTOR.full_name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.startswith("False ")


def test_the_check_catches_a_forbidden_import_and_a_cycle(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import grpc\nfrom mcp.server import Server\nfrom iris_app.app import running_iris\n")
    assert roots(imports_of(bad)) & TRANSPORTS == {"grpc", "mcp"}
    assert "iris_app" in roots(imports_of(bad)) - MAY_IMPORT["iris_core"]
