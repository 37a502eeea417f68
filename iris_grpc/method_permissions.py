"""The permission each RPC needs, read from the contract's ``(iris.v1.required_permission)`` option."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from google.protobuf.descriptor import ServiceDescriptor

from iris_core.access import PERMISSIONS

from .generated.iris.v1 import iris_pb2

__all__ = ["method_permissions"]


def method_permissions(service: ServiceDescriptor | None = None) -> Mapping[str, str]:
    """Return ``{"/iris.v1.Iris/SendMessage": "team:tell", ...}`` for every method of the service.

    Raises:
        RuntimeError: a method declares no permission, or one that does not exist; the server refuses to
            start rather than serve an RPC that nobody could call or everybody could.

    """
    service = service or iris_pb2.DESCRIPTOR.services_by_name["Iris"]
    needed: dict[str, str] = {}
    for method in service.methods:
        permission = method.GetOptions().Extensions[iris_pb2.required_permission]
        if permission not in PERMISSIONS:
            problem = (
                "declares no permission" if not permission else f"declares unknown permission {permission!r}"
            )
            raise RuntimeError(f"{method.full_name} {problem}")
        needed[f"/{service.full_name}/{method.name}"] = permission
    return MappingProxyType(needed)
