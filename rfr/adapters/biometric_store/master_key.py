"""The master key that wraps every record's data key; it never leaves this process.

It is 32 random bytes in ``$RFR_DATA_DIR/keys/master.key``, created on first use with mode
0600 in a 0700 folder. Creation writes a temporary file and hard-links it into place, so two
processes starting together agree on one key and neither can read a half-written file.

A key file that others can read is refused rather than used: whoever can read it can read
every image in the store. A production deployment replaces this file with a KMS or HSM
holding the key; only ``wrap``/``unwrap`` would change.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_WRAP_CONTEXT = b"rfr-data-key/1:"
# Index keys are wrapped under their own context, so a wrapped index key can never be taken
# for a record's data key (or the reverse), whatever the names they are bound to.
_INDEX_WRAP_CONTEXT = b"rfr-index-key/1:"
# Where a deployment keeps its master key, relative to its data folder ($RFR_DATA_DIR).
MASTER_KEY_FILE = Path("keys") / "master.key"


class MasterKeyError(Exception):
    """The master key file is missing where it must exist, unsafe, or damaged."""


class MasterKey:
    """Wraps and unwraps data keys with AES-256-GCM, bound to the record they belong to."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise MasterKeyError(f"a master key is {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        # Stored beside each wrapped key so a store opened with another master key says so
        # plainly instead of failing as "damaged"; a hash prefix reveals nothing of the key.
        self.key_id = hashlib.sha256(b"rfr-master-key-id:" + key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    @classmethod
    def load_or_create(cls, path: Path) -> MasterKey:
        path = Path(path)
        if not path.exists():
            _create(path)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise MasterKeyError(
                f"{path} is readable by others (mode {stat.filemode(mode)}); it must be 0600"
            )
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise MasterKeyError(f"{path} does not hold a {KEY_BYTES}-byte key")
        return cls(key)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> MasterKey:
        """The master key of the deployment whose data folder is ``data_dir``."""
        return cls.load_or_create(Path(data_dir) / MASTER_KEY_FILE)

    def wrap(self, data_key: bytes, record_id: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, _WRAP_CONTEXT + record_id.encode())

    def unwrap(self, wrapped: bytes, record_id: str) -> bytes:
        """The data key; ``InvalidTag`` when the wrapped key is damaged or belongs to another record."""
        nonce, sealed = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        return self._aead.decrypt(nonce, sealed, _WRAP_CONTEXT + record_id.encode())

    def wrap_index_key(self, index_key: bytes, name: str) -> bytes:
        """Wrap the key of one vector index file generation, bound to ``name`` (which index)."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, index_key, _INDEX_WRAP_CONTEXT + name.encode())

    def unwrap_index_key(self, wrapped: bytes, name: str) -> bytes:
        """The index key; ``InvalidTag`` when damaged or wrapped for another index."""
        nonce, sealed = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        return self._aead.decrypt(nonce, sealed, _INDEX_WRAP_CONTEXT + name.encode())


def _create(path: Path) -> None:
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        folder.chmod(0o700)
    tmp = folder / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        # Another process may have created it first: then theirs is the key.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
