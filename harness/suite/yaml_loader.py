"""The one YAML loader for suite files: safe, bounded, strict about keys, YAML 1.2 numbers.

PyYAML's safe loader alone lets a second `training:` block silently replace the first, expands
aliases without bound (a few hundred bytes become gigabytes: "billion laughs"), reads a file of
any size in pure Python, and, following YAML 1.1, reads `1e-4` as a string. Here: the C parser
when PyYAML has it; a duplicate key is an error naming both lines; the document's size once
aliases are expanded, its nesting depth and the file's size are capped; a file that is not
UTF-8 is one error. Every failure is a YamlLoadError whose message names the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1_000_000  # the largest shipped suite is ~8 kB
MAX_NODES = 100_000  # YAML nodes once every alias is expanded
MAX_DEPTH = 64  # nesting of mappings and sequences

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlLoadError(ValueError):
    """A YAML file cannot be read; the message names the file and what to fix."""


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, second: int) -> None:
        self.key, self.first, self.second = key, first, second


class SuiteLoader(_Base):  # type: ignore[misc, valid-type]
    """Safe loader (C parser when available) that refuses duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue  # merge keys may be overridden on purpose; complex keys are refused later
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(key, seen[key], line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 floats: an exponent without a dot (`1e-4`, `1E5`) or without a sign (`1.0e5`). PyYAML
# follows YAML 1.1, where these are strings; a learning rate written `1e-4` is a float to anyone.
SuiteLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _check_size(node: yaml.Node, path: Path) -> None:
    """Refuse a document that is too deep, too large once its aliases are expanded, or that
    refers to itself. Iterative: a hostile depth must not exhaust Python's stack."""
    expanded: dict[int, int] = {}  # id(node) -> node count of its expansion
    stack: list[tuple[yaml.Node, int, bool]] = [(node, 1, False)]
    open_ids: set[int] = set()
    while stack:
        current, depth, children_done = stack.pop()
        key = id(current)
        if children_done:
            open_ids.discard(key)
            total = 1 + sum(expanded[id(c)] for c in _children(current))
            if total > MAX_NODES:
                raise YamlLoadError(
                    f"{path}: too large once its aliases (*name) are expanded (more than "
                    f"{MAX_NODES:,} values): write the values out, or use fewer aliases"
                )
            expanded[key] = total
            continue
        if key in expanded:
            continue
        if key in open_ids:
            raise YamlLoadError(f"{path}: an alias (*name) refers to a value that contains it")
        if depth > MAX_DEPTH:
            raise YamlLoadError(f"{path}: nested more than {MAX_DEPTH} levels deep")
        open_ids.add(key)
        stack.append((current, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(current))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_text(text: str, path: Path | str = "<string>") -> Any:
    """The data of one YAML document; YamlLoadError naming `path` on any problem."""
    path = Path(path)
    loader = SuiteLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, path)
        return loader.construct_document(node)
    except _DuplicateKey as dup:
        raise YamlLoadError(
            f"{path}: key {dup.key!r} appears twice (lines {dup.first} and {dup.second}): "
            "keep one (a second one would silently replace the first)"
        ) from None
    except yaml.YAMLError as exc:
        raise YamlLoadError(f"{path}: not valid YAML: {_one_line(exc)}") from None
    except RecursionError:
        raise YamlLoadError(f"{path}: nested too deeply") from None
    finally:
        loader.dispose()


def load_file(path: Path | str) -> Any:
    """Read and parse a YAML file under the size cap, as UTF-8."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise YamlLoadError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise YamlLoadError(
            f"{path}: larger than {MAX_FILE_BYTES:,} bytes; a suite file is a few kB (is this "
            "the right file?)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlLoadError(
            f"{path}: not UTF-8 text (byte {exc.start}, line {line}): save it as UTF-8"
        ) from None
    return load_text(text, path)


def _one_line(exc: yaml.YAMLError) -> str:
    return " ".join(str(exc).split())
