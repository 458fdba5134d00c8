"""Pointing at places in a YAML document: the (line, column) of a key path, for messages."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

__all__ = ["FAST_SAFE_LOADER", "LineIndex"]

#: PyYAML's safe loader on libyaml when PyYAML was built with it (its wheels are): the same
#: documents, several times faster than the pure-Python parser on a policy of hundreds of lines.
FAST_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineIndex:
    """Maps a location in the document (keys and indices) to its (line, column), 1-based.

    The document is parsed on the first lookup: a valid file is never asked for a place.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._parsed = False
        self._root_node: yaml.Node | None = None

    @property
    def _root(self) -> yaml.Node | None:
        if not self._parsed:
            self._parsed = True
            if self._text:
                try:
                    self._root_node = yaml.compose(self._text, Loader=FAST_SAFE_LOADER)
                except yaml.YAMLError:
                    self._root_node = None
        return self._root_node

    def node(self, loc: Sequence[str | int], *, key: bool = False) -> yaml.Node | None:
        """The value node at `loc` (or the key node of its last part, with `key`)."""
        node = self._root
        found: yaml.Node | None = None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        found = key_node if key else value_node
                        node = value_node
                        break
                else:
                    return found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    return found
                node = found = node.value[part]
            else:
                return found
        return found

    def position(
        self, loc: Sequence[str | int], *, key: bool = True
    ) -> tuple[int | None, int | None]:
        node = self.node(loc, key=key)
        if node is None:
            return None, None
        return node.start_mark.line + 1, node.start_mark.column + 1

    def expression_position(
        self, loc: Sequence[str | int], line: int, column: int
    ) -> tuple[int | None, int | None]:
        """Where (line, column) inside a CEL expression sits in the file (exact for one-line
        plain and quoted scalars; the expression's own line for block scalars)."""
        node = self.node(loc)
        if not isinstance(node, yaml.ScalarNode):
            return None, None
        start = node.start_mark
        if node.style in ("|", ">"):
            return start.line + 1 + line, None
        quote = 1 if node.style in ("'", '"') else 0
        if line == 1:
            return start.line + 1, start.column + 1 + quote + column - 1
        return start.line + line, None

    def at(self, loc: Sequence[str | int]) -> str:
        line, _ = self.position(loc)
        return "" if line is None else f" (line {line})"
