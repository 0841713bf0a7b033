"""Writing a MIDI-learned control mapping back into a preset file, keeping its comments."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import PresetError
from .schema import Preset
from .parse import load_preset, loads_preset


def add_control(path: str | Path, control: Mapping[str, Any]) -> Preset:
    """Add a control mapping to a preset file, keeping its comments and layout (MIDI learn).

    ``control`` is written as in the file, e.g. ``{"cc": 21, "to": "answer.temperature",
    "range": [0.2, 1.5]}``.  A control already on the same CC and channel is replaced.  The
    new text is validated before the file is replaced (atomically), so a bad mapping never
    damages the preset; raises :class:`PresetError`.  Call it off the engine thread.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    load_preset(path)  # the file must be valid before we touch it
    item = yaml.safe_dump(dict(control), default_flow_style=True, sort_keys=False).strip()
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    controls_node = controls_key = None
    for key_node, value_node in root.value:
        if key_node.value == "controls":
            controls_key, controls_node = key_node, value_node
    channel = control.get("channel")
    if controls_node is None or (isinstance(controls_node, yaml.ScalarNode) and controls_node.value in ("", "~", "null")):
        if controls_node is None:
            new_text = text + ("" if text.endswith("\n") or not text else "\n") + f"controls:\n  - {item}\n"
        elif controls_node.value == "":  # "controls:" with nothing after it
            colon = text.index(":", controls_key.end_mark.index) + 1
            new_text = text[:colon] + f" [{item}]" + text[colon:]
        else:  # controls: ~ / null
            start, end = controls_node.start_mark.index, controls_node.end_mark.index
            new_text = text[:start] + f"[{item}]" + text[end:]
    elif isinstance(controls_node, yaml.SequenceNode):
        same = None
        for node in controls_node.value:
            if isinstance(node, yaml.MappingNode):
                fields = {k.value: v.value for k, v in node.value if isinstance(v, yaml.ScalarNode)}
                if fields.get("cc") == str(control.get("cc")) and fields.get("channel") == (None if channel is None else str(channel)):
                    same = node
        if same is not None:
            new_text = text[: same.start_mark.index] + item + text[_content_end(same) :]
        elif controls_node.flow_style:
            close = controls_node.end_mark.index - 1  # the ']'
            sep = ", " if controls_node.value else ""
            new_text = text[:close] + sep + item + text[close:]
        else:
            last = controls_node.value[-1]
            dash_column = controls_node.value[0].start_mark.column - 2
            line_end = text.find("\n", _content_end(last))
            insert_at = len(text) if line_end < 0 else line_end + 1
            prefix = "" if line_end >= 0 else "\n"
            new_text = text[:insert_at] + prefix + " " * max(0, dash_column) + f"- {item}\n" + text[insert_at:]
    else:
        raise PresetError(str(path), controls_node.start_mark.line + 1, "controls", "must be a list")
    preset = loads_preset(new_text, path)  # raises before anything is written
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    tmp.replace(path)
    return preset


def _content_end(node: yaml.Node) -> int:
    """Where a node's own text ends.  A block collection's end mark lies at the next token
    (past newlines and indentation), so follow its last child instead."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1])
    return node.end_mark.index
