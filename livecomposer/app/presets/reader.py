"""Reading YAML with the line of every key and item, and walking it with paths.

:class:`At` is a cursor into the document (``graph[1].plugin`` at line 12) whose checks
raise :class:`~.errors.PresetError` naming the file, line and key.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Collection, Iterable, NoReturn, Sequence

import yaml

from .errors import PresetError


class _Map(dict):
    """A mapping read from YAML that knows its line, and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class _Seq(list):
    """A sequence read from YAML that knows its line, and the line of each item."""

    line: int = 0
    item_lines: list[int]


class _DuplicateKey(Exception):
    def __init__(self, line: int, key: str) -> None:
        self.line = line
        self.key = key


class _LineLoader(yaml.SafeLoader):
    """SafeLoader (same tags, same values) whose mappings and lists carry line numbers."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode):
    data = _Map()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            ident = (key_node.tag, key_node.value)
            if ident in seen:
                raise _DuplicateKey(key_node.start_mark.line + 1, key_node.value)
            seen.add(ident)
    data.update(loader.construct_mapping(node))  # (this also resolves merge keys into node.value)
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            data.key_lines.setdefault(key, key_node.start_mark.line + 1)
        except TypeError:  # an unhashable key; construct_mapping has already refused it
            pass


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode):
    data = _Seq()
    data.line = node.start_mark.line + 1
    data.item_lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_sequence(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def read_yaml(text: str, file: str) -> Any:
    loader = _LineLoader(text)
    try:
        return loader.get_single_data()
    except _DuplicateKey as exc:
        raise PresetError(file, exc.line, "", f"duplicate key {exc.key!r}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise PresetError(file, line, "", f"not valid YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise PresetError(file, None, "", f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def plain(value: Any) -> Any:
    """Plain dicts and lists (no line-number subclasses) for what plugins receive."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class At:
    """A value in the document, with where it is (key path and line) for error messages."""

    value: Any
    path: str
    line: int | None
    file: str

    def fail(self, reason: str) -> NoReturn:
        raise PresetError(self.file, self.line, self.path, reason)

    def _sub(self, key: Any) -> str:
        if isinstance(key, int) and isinstance(self.value, list):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else str(key)

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and key in self.value

    def get(self, key: str, default: Any = None) -> "At":
        """The child under ``key`` (or ``default`` placed at this mapping's line)."""
        if isinstance(self.value, dict) and key in self.value:
            lines = getattr(self.value, "key_lines", {})
            return At(self.value[key], self._sub(key), lines.get(key, self.line), self.file)
        return At(default, self._sub(key), self.line, self.file)

    def items(self) -> Iterable[tuple[Any, "At"]]:
        for key in self.value:
            yield key, self.get(key)

    def elements(self) -> Iterable["At"]:
        lines = getattr(self.value, "item_lines", [])
        for i, item in enumerate(self.value):
            yield At(item, self._sub(i), lines[i] if i < len(lines) else self.line, self.file)

    # -- shape checks -------------------------------------------------------------------
    def mapping(self, what: str = "a mapping") -> "At":
        if not isinstance(self.value, dict):
            self.fail(f"must be {what}; got {describe(self.value)}")
        return self

    def sequence(self, what: str = "a list") -> "At":
        if not isinstance(self.value, list):
            self.fail(f"must be {what}; got {describe(self.value)}")
        return self

    def only_keys(self, known: Collection[str]) -> None:
        """Unknown keys are errors, pointing at the key's own line, with the closest name."""
        for key in self.value:
            if key not in known:
                at = self.get(key)
                close = difflib.get_close_matches(str(key), list(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
                At(key, at.path, at.line, self.file).fail(f"unknown key {str(key)!r}{hint}")

    def require(self, key: str) -> "At":
        if not self.has(key):
            self.fail(f"missing required key {key!r}")
        return self.get(key)

    def text(self, allow_empty: bool = False) -> str:
        if not isinstance(self.value, str) or (not allow_empty and not self.value.strip()):
            self.fail(f"must be text; got {describe(self.value)}")
        return self.value

    def choice(self, choices: Sequence[str]) -> str:
        if self.value not in choices:
            close = difflib.get_close_matches(str(self.value), list(choices), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(f"must be one of {', '.join(choices)}; got {self.value!r}{hint}")
        return self.value

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            self.fail(f"must be true or false; got {describe(self.value)}")
        return self.value

    def integer(self, low: int | None = None, high: int | None = None) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            self.fail(f"must be a whole number; got {describe(self.value)}")
        self._bounds(self.value, low, high)
        return self.value

    def number(self, low: float | None = None, high: float | None = None) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            self.fail(f"must be a number; got {describe(self.value)}")
        self._bounds(self.value, low, high)
        return float(self.value)

    def _bounds(self, value: float, low: float | None, high: float | None) -> None:
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(f"must be {span(low, high)}; got {value}")

    def all_lines(self, prefix: str = "") -> dict[str, int]:
        """Line of every key path below this node, relative (``answer.length``, ``notes[2]``)."""
        found: dict[str, int] = {}
        if isinstance(self.value, dict):
            for key, child in self.items():
                name = f"{prefix}.{key}" if prefix else str(key)
                if child.line is not None:
                    found[name] = child.line
                found.update(child.all_lines(name))
        elif isinstance(self.value, list):
            for i, child in enumerate(self.elements()):
                name = f"{prefix}[{i}]"
                if child.line is not None:
                    found[name] = child.line
                found.update(child.all_lines(name))
        return found


def describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def span(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f">= {low}" if low is not None else f"<= {high}"
