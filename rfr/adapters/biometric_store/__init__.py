"""The embedded biometric store: encrypted files and a SQLite key table under ``$RFR_DATA_DIR``."""

from rfr.adapters.biometric_store.encrypted_files import EncryptedFileStore
from rfr.adapters.biometric_store.master_key import MasterKey, MasterKeyError

__all__ = ["EncryptedFileStore", "MasterKey", "MasterKeyError"]
