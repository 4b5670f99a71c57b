"""Reading policy YAML (政策参数 YAML): a loader that keeps line numbers, records duplicate keys
and never makes floats.

Mappings remember their own line, each key's line and any repeated keys; plain numbers are
kept as written (amounts must be quoted strings); only true/false are switches. Bundles are
read with it by `dangliang.policy.bundle_loader`; `parse_yaml` and `yaml_scalar_text` read
other policy files, such as reform scenarios, the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

import yaml

from dangliang.domain.problems import Problem
from dangliang.policy.parameter_values import ParameterLookupError

# ---------------------------------------------------------------------------------------------
# YAML reading: a loader that keeps line numbers, records duplicate keys and never makes floats


@dataclass(frozen=True)
class YamlNumber:
    """A plain YAML number (int or float), kept as written: amounts must be quoted strings."""

    text: str


@dataclass(frozen=True)
class Unreadable:
    """A scalar YAML could not build, e.g. `2022-02-30` (shaped like a date, but is not one)."""

    text: str
    reason: str


class Map(dict[Any, Any]):
    """A YAML mapping that remembers the line of itself, of each key and of duplicate keys."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int, int]] = []


_BOOL_TAG: Final = "tag:yaml.org,2002:bool"


class _PolicyLoader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that builds `Map`s, keeps numbers as `YamlNumber` and reads only
    true/false as booleans (YAML 1.1 would also read yes/no/on/off)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Map:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, found {node.id}", node.start_mark
            )
        result = Map(node.start_mark.line + 1)
        for key_node, value_node in node.value:
            key = self._construct_safely(key_node)
            try:
                hash(key)
            except TypeError:
                key = Unreadable("?", "a mapping key must be a plain name")
            line = key_node.start_mark.line + 1
            if key in result:
                # keep the first value; the walker reports the repetition with its path
                result.duplicates.append((key, result.key_lines[key], line))
                continue
            result[key] = self._construct_safely(value_node)
            result.key_lines[key] = line
        return result

    def _construct_safely(self, node: Any) -> Any:
        try:
            return self.construct_object(node, deep=True)
        except ValueError as e:
            self.recursive_objects.pop(node, None)
            return Unreadable(str(node.value), str(e))


def _construct_map(loader: _PolicyLoader, node: Any) -> Map:
    return loader.construct_mapping(node)


def _construct_number(loader: _PolicyLoader, node: Any) -> YamlNumber:
    return YamlNumber(str(node.value))


def _construct_merge_key(loader: _PolicyLoader, node: Any) -> str:
    # merge keys are not supported: keep `<<` as a plain key, reported as an unknown name
    return str(node.value)


_PolicyLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_PolicyLoader.add_constructor("tag:yaml.org,2002:int", _construct_number)
_PolicyLoader.add_constructor("tag:yaml.org,2002:float", _construct_number)
_PolicyLoader.add_constructor("tag:yaml.org,2002:merge", _construct_merge_key)
_PolicyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PolicyLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse(text: str, source: str) -> tuple[Any, list[Problem]]:
    loader = _PolicyLoader(text)
    try:
        return loader.get_single_data(), []
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        what = e.problem or e.context or "?"
        return None, [Problem(source, line, None, f"YAML 格式错误：{what}", f"YAML error: {what}")]
    except (yaml.YAMLError, ValueError) as e:
        return None, [Problem(source, None, None, f"YAML 格式错误：{e}", f"YAML error: {e}")]
    finally:
        loader.dispose()


def parse_yaml(text: str, source: str) -> tuple[Any, list[Problem]]:
    """YAML read as bundles are (mappings remember their lines, numbers are kept as written,
    only true/false are switches): for other policy files such as reform scenarios."""
    return parse(text, source)


def yaml_scalar_text(raw: object) -> str:
    """A scalar from `parse_yaml` as the text a person wrote, for `parse_value_text`; an
    unquoted number is refused as in bundles."""
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, YamlNumber):
        raise ParameterLookupError(
            f'金额、比率等数值请写成字符串（加引号）："{raw.text}"，而不是 {raw.text}',
            f'write amounts as strings (in quotes): "{raw.text}", not {raw.text}',
        )
    if isinstance(raw, list):
        return json.dumps(raw, default=str)
    return str(raw)
