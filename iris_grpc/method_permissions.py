"""The permission each RPC needs, read from the contract's ``(iris.v1.required_permission)`` option."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from google.protobuf.descriptor import ServiceDescriptor

from iris_client.contract import IRIS_SERVICE, http_rule, required_permission
from iris_core.access import PERMISSIONS

__all__ = ["README_BEGIN", "README_END", "method_permissions", "permissions_table"]


def method_permissions(service: ServiceDescriptor | None = None) -> Mapping[str, str]:
    """Return ``{"/iris.v1.Iris/SendMessage": "team:tell", ...}`` for every method of the service.

    Raises:
        RuntimeError: a method declares no permission, or one that does not exist; the server refuses to
            start rather than serve an RPC that nobody could call or everybody could.

    """
    service = service or IRIS_SERVICE
    needed: dict[str, str] = {}
    for method in service.methods:
        permission = required_permission(method)
        if permission not in PERMISSIONS:
            problem = (
                "declares no permission" if not permission else f"declares unknown permission {permission!r}"
            )
            raise RuntimeError(f"{method.full_name} {problem}")
        needed[f"/{service.full_name}/{method.name}"] = permission
    return MappingProxyType(needed)


README_BEGIN, README_END = "<!-- permissions:begin -->", "<!-- permissions:end -->"


def permissions_table() -> str:
    """Return the Markdown table RPC → permission → REST route, derived from the contract."""
    lines = ["| RPC | permission | REST route |", "|---|---|---|"]
    for method in IRIS_SERVICE.methods:
        rule = http_rule(method)
        verb = (rule.WhichOneof("pattern") or "") if rule is not None else ""
        route = f"{verb.upper()} {getattr(rule, verb)}" if verb else ""
        permission = required_permission(method)
        lines.append(f"| {method.name} | `{permission}` | `{route}` |")
    return "\n".join(lines)
