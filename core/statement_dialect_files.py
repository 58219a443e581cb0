"""Reading the settlement-statement dialects the portal ships: data/statement_dialects/<name>.json
(one file per dialect; the format is described in core.domain.statements) and partners.json, which
names each partner's dialect, with a "default" for partners it does not list.

This is the file-reading half of core.domain.statements, kept out of core/domain (which does no
I/O). A dialect file that is wrong is a ReferenceDataError naming the file and the fields; a name
with no file is a StatementError (key error.statement.unknown_dialect).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from core.domain.statement_dialects import Dialect, dialect_from_dict
from core.domain.statements import statement_error
from core.errors import ReferenceDataError
from core.reference_data import DATA_DIR

DIALECTS_DIR = DATA_DIR / "statement_dialects"
PARTNERS_FILE = "partners.json"
_NAME = re.compile(r"[a-z0-9_]{1,40}")


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, json.JSONDecodeError) as exc:
        raise ReferenceDataError(
            f"{path}: not a readable JSON file ({exc})", key="error.statement.bad_dialect_file", source=str(path)
        ) from exc


def load_dialect(path: Path) -> Dialect:
    """One dialect file, checked (the dialect takes the file's name without .json)."""
    return dialect_from_dict(path.stem, _read_json(path), source=str(path))


@functools.cache
def dialect(name: str) -> Dialect:
    """The dialect called `name` (data/statement_dialects/<name>.json), read once."""
    path = DIALECTS_DIR / f"{name}.json"
    if not isinstance(name, str) or not _NAME.fullmatch(name) or path.name == PARTNERS_FILE or not path.is_file():
        raise statement_error("unknown_dialect", 0, dialect=str(name)[:40])
    return load_dialect(path)


@functools.cache
def partner_dialects() -> dict[str, str]:
    """partners.json: partner id -> dialect name, with "default"."""
    path = DIALECTS_DIR / PARTNERS_FILE
    data = _read_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()) or "default" not in data:
        raise ReferenceDataError(
            f'{path}: give an object of partner id -> dialect name, with a "default"',
            key="error.statement.bad_dialect_file",
            source=str(path),
        )
    return dict(data)


def dialect_for(partner: str) -> Dialect:
    """The dialect `partner` writes its statements in (partners.json's "default" if unlisted)."""
    names = partner_dialects()
    return dialect(names.get(partner, names["default"]))
