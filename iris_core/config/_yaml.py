"""The YAML dialect of ``config.yaml``: safe, without timestamps, and strict about duplicate keys."""

from __future__ import annotations

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode

__all__ = ["ConfigLoader", "read_yaml"]

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class ConfigLoader(yaml.SafeLoader):
    """A ``SafeLoader`` that reads ``2025-01-01`` as text and refuses a mapping that repeats a key.

    No setting is a date, so a date-looking description or model name must stay a string. A repeated key
    is refused because plain YAML keeps the last one silently: two ``backend:`` teams would quietly
    become one.
    """

    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[object, object]:
        """Build a mapping after checking the keys written in it are distinct.

        Keys brought in by a ``<<:`` merge may be overridden; that is what merging is for. Only the keys
        written in this mapping itself are compared, by their resolved tag and text.
        """
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return dict(super().construct_mapping(node, deep=deep))


def read_yaml(text: str) -> object:
    """Parse one YAML document with :class:`ConfigLoader`.

    Raises:
        yaml.YAMLError: the text is not valid YAML or repeats a key.

    """
    return yaml.load(text, Loader=ConfigLoader)
