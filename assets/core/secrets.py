"""The pseudonymisation key: the one secret the pipeline needs, kept outside the repository.

`pseudonym_key()` is the key of the keyed hash (HMAC-SHA256) that turns a legal
representative's id number into `raw.enterprises.legal_rep_key`. It comes from the environment
variable RISK_PSEUDONYM_KEY, else from the file `$DAGSTER_HOME/pseudonym.key` (DAGSTER_HOME
defaults to `<repo>/.dagster_home`), which is created on first use: 32 random bytes as hex,
permissions 0600. The key is never written into dbt vars, metadata, logs or SQL text.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

ENV_VAR = "RISK_PSEUDONYM_KEY"
KEY_FILE_NAME = "pseudonym.key"
_DEFAULT_DAGSTER_HOME = Path(__file__).resolve().parent.parent.parent / ".dagster_home"


def key_file() -> Path:
    """`$DAGSTER_HOME/pseudonym.key` (DAGSTER_HOME defaults to `<repo>/.dagster_home`)."""
    home = os.environ.get("DAGSTER_HOME") or str(_DEFAULT_DAGSTER_HOME)
    return Path(home) / KEY_FILE_NAME


def pseudonym_key() -> bytes:
    """RISK_PSEUDONYM_KEY, else the key file (created with 0600 when missing)."""
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env.encode("utf-8")
    path = key_file()
    if not path.exists():
        _create_key_file(path)
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise PermissionError(
            f"{path} is readable by other users (mode "
            f"{oct(stat.S_IMODE(path.stat().st_mode))}): run `chmod 600 {path}`, and replace "
            "the key if it may have been read"
        )
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ValueError(f"{path} is empty: delete it to have a new key created, or set {ENV_VAR}")
    return key.encode("utf-8")


def _create_key_file(path: Path) -> None:
    """Write a new key to a private temp file, then link it into place: a concurrent run
    either wins (and both use its key) or sees a complete file, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def keyed_hash(value: str, key: bytes) -> str:
    """HMAC-SHA256 of `value` under `key`, as 64 hex characters."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
