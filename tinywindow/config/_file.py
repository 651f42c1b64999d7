"""Reading configuration text without trusting it.

A config file (or a structured ``TW_*`` / ``-s`` value) is checked before anything is built:
at most ``MAX_FILE_BYTES``, UTF-8, at most ``MAX_DEPTH`` levels deep, no duplicate keys, no
YAML anchors or aliases (a "billion laughs" document is refused at its first anchor, before
anything is expanded), string keys only.  YAML typing is narrowed to what a config needs:
``true``/``false`` (not ``yes``/``on``), decimal integers (``0123`` stays text, never octal),
no timestamps.  Every failure is one short ``ConfigError``: messages are single lines of at most
``MAX_MESSAGE_CHARS`` and never echo more than ``MAX_SHOWN_CHARS`` of a value.
"""

from __future__ import annotations

import json
import re
import reprlib
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from tinywindow.core.settings import MAX_SHOWN_CHARS, config_error, shorten

MAX_FILE_BYTES = 1024**2  # a config file larger than 1 MiB is refused unread
MAX_DEPTH = 32  # nesting levels of mappings and lists
MAX_VALUE_CHARS = 64 * 1024  # one TW_* or -s value

_STR_TAG = "tag:yaml.org,2002:str"
_REPR = reprlib.Repr()
_REPR.maxstring = MAX_SHOWN_CHARS
_REPR.maxother = MAX_SHOWN_CHARS
_REPR.maxlong = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8
_REPR.maxlevel = 3



def show(value: Any) -> str:
    """A bounded ``repr`` of a value for an error message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<an integer of {value.bit_length()} bits>"
    try:
        return shorten(_REPR.repr(value))
    except Exception:  # a value whose repr fails is still an error worth reporting
        return f"<a {type(value).__name__}>"



# ---------------------------------------------------------------------------- YAML
class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors, aliases, deep nesting, duplicate and non-string keys."""

    source = "<text>"

    def __init__(self, stream: str, key: str | None = None) -> None:
        super().__init__(stream)
        self._path: list[str] = key.split(".") if key else []  # where this text sits in the config

    def _where(self, node_or_event: Any) -> str:
        mark = node_or_event.start_mark
        return f"{self.source}, line {mark.line + 1}, column {mark.column + 1}"

    def _key(self) -> str | None:
        return ".".join(self._path) or None

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
        event = self.peek_event()
        pushed = parent is not None
        if pushed:
            label = index.value if isinstance(index, ScalarNode) else "<key>" if index is None else str(index)
            self._path.append(shorten(str(label), 40))
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise config_error(
                f"YAML anchors and aliases (&name, *name) are not allowed in a config: {self._where(event)}",
                key=self._key(),
            )
        if len(self._path) > MAX_DEPTH:
            raise config_error(f"config nested deeper than {MAX_DEPTH} levels: {self._where(event)}", key=self._key())
        try:
            return super().compose_node(parent, index)
        except yaml.YAMLError as exc:
            if not hasattr(exc, "config_key"):
                exc.config_key = self._key()  # type: ignore[attr-defined]  # the innermost key being read
            raise
        finally:
            if pushed:
                self._path.pop()

    def compose_mapping_node(self, anchor: str | None) -> MappingNode:  # type: ignore[override]
        node = super().compose_mapping_node(anchor)  # type: ignore[arg-type]
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != _STR_TAG:
                raise config_error(
                    f"config keys must be plain strings (quote it): {self._where(key_node)}", key=self._key()
                )
            key = key_node.value
            dotted = ".".join([*self._path, key])
            if key in seen:
                raise config_error(
                    f"duplicate key {shorten(dotted)!r} at {self._where(key_node)} (first at line {seen[key]})",
                    key=dotted,
                )
            seen[key] = key_node.start_mark.line + 1
        return node


# YAML 1.1 typing, narrowed: booleans are true/false only, integers are plain decimals (so
# "0123", "0x10" and "1:30" stay text instead of becoming 83, 16 and 90), no timestamps, no
# merge keys (they need anchors anyway).
_DROPPED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:timestamp",
            "tag:yaml.org,2002:merge"}
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789")
)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The problem and position of a YAML error, without the quoted source line (which could
    hold a secret)."""
    if isinstance(exc, yaml.reader.ReaderError):
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        return f"{exc.reason} (character {char} at offset {exc.position})"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{exc.problem or exc.context or 'syntax error'}{where}"
    return str(exc)


def load_yaml(text: str, source: str, key: str | None = None) -> Any:
    """Parse one YAML document strictly (see the module docstring)."""
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text, key)  # refuses NUL and other unprintable characters
        loader.source = source
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        where = getattr(exc, "config_key", None) or key
        raise config_error(f"{source} is not valid YAML: {shorten(_yaml_problem(exc))}", key=where) from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4300 digits
        raise config_error(f"{source} holds a value that cannot be read: {shorten(str(exc))}", key=key) from None
    finally:
        if loader is not None:
            loader.dispose()


# ---------------------------------------------------------------------------- JSON
class _Pairs(list[tuple[str, Any]]):
    """A JSON object as read, before duplicate keys are checked."""


def _check_depth(data: Any, source: str) -> None:
    stack: list[tuple[Any, list[str]]] = [(data, [])]
    while stack:
        node, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise config_error(f"{source} is nested deeper than {MAX_DEPTH} levels", key=".".join(path))
        if isinstance(node, _Pairs):
            stack.extend((v, [*path, shorten(str(k), 40)]) for k, v in node)
        elif isinstance(node, list):
            stack.extend((v, [*path, str(i)]) for i, v in enumerate(node))


def _to_dicts(node: Any, path: list[str], source: str) -> Any:
    if isinstance(node, _Pairs):
        out: dict[str, Any] = {}
        for k, v in node:
            if k in out:
                dotted = ".".join([*path, k])
                raise config_error(f"duplicate key {shorten(dotted)!r} in {source}", key=dotted)
            out[k] = _to_dicts(v, [*path, k], source)
        return out
    if isinstance(node, list):
        return [_to_dicts(v, [*path, str(i)], source) for i, v in enumerate(node)]
    return node


def load_json(text: str, source: str) -> Any:
    """Parse JSON, refusing duplicate keys and nesting deeper than ``MAX_DEPTH``.  ``NaN`` and
    ``Infinity`` are read as floats and refused by validation, which names their key."""
    try:
        data = json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as exc:
        raise config_error(f"{source} is not valid json: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise config_error(f"{source} is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise config_error(f"{source} is not valid json: {shorten(str(exc))}") from None
    _check_depth(data, source)
    return _to_dicts(data, [], source)


# ---------------------------------------------------------------------------- files
def read_file(path: str | Path) -> dict[str, Any]:
    """A config file's top-level mapping (JSON by extension, else YAML); ``{}`` when empty."""
    p = Path(path)
    name = shorten(str(p))
    try:
        if not p.exists():
            raise config_error(f"config file not found: {name}")
        if not p.is_file():
            raise config_error(f"config file {name} is not a regular file")
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise config_error(f"config file {name} is {size} bytes; the limit is {MAX_FILE_BYTES} bytes")
        with p.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise config_error(f"cannot read config file {name}: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise config_error(f"config file {name} is over the limit of {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise config_error(
            f"config file {name} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    source = f"config file {name}"
    loaded = load_json(text, source) if p.suffix.lower() == ".json" else load_yaml(text, source)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise config_error(
            f"config file {name} must hold a mapping of sections at the top level, not a {type(loaded).__name__}"
        )
    return loaded
