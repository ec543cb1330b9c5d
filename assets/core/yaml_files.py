"""Reading the rule files (signal catalog, access rules, scorecard spec).

PyYAML's pure-Python parser takes 0.18 s for the signal catalog; libyaml's C parser, which
the PyYAML wheels ship, reads it in about a tenth of that with the same result (same
resolver and constructor: only the scanner and parser are C). The catalog is read by many
steps of a night and many times by the tests, so every loader goes through here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: libyaml's safe loader, or PyYAML's own where PyYAML was built without libyaml.
SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """The YAML document in `path` (UTF-8), as `yaml.safe_load` reads it; a syntax error
    raises `error` ("<path>: not valid YAML: ..." with the line and column), the rule file's
    own error class."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
