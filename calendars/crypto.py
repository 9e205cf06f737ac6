"""Encryption at rest for calendar credentials (OAuth tokens, MSAL caches, ICS feed URLs).

MultiFernet over ``settings.TOKEN_ENCRYPTION_KEYS``: the first key encrypts, every key decrypts, so a new
key is put first and old ones stay until ``manage.py rotate_token_keys`` has re-encrypted the rows.
"""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from calendars.errors import TokenDecryptFailed, TokenKeyMissing


def _fernet() -> MultiFernet:
    keys = list(getattr(settings, "TOKEN_ENCRYPTION_KEYS", []) or [])
    if not keys:
        raise TokenKeyMissing(
            "TOKEN_ENCRYPTION_KEYS is empty: calendar credentials cannot be stored. Generate a key with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' "
            "and set TOKEN_ENCRYPTION_KEYS."
        )
    return MultiFernet([Fernet(key) for key in keys])


def require_keys() -> None:
    """Raise ``TokenKeyMissing`` (its message says what to set) unless a key is configured."""
    _fernet()


def encrypt_secrets(data: dict) -> str:
    """Serialise ``data`` as JSON and encrypt it with the first configured key."""
    return _fernet().encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()


def decrypt_secrets(blob: str) -> dict:
    if not blob:
        return {}
    try:
        return json.loads(_fernet().decrypt(blob.encode()))
    except InvalidToken:
        raise TokenDecryptFailed() from None


def rotate_blob(blob: str) -> str:
    """Re-encrypt ``blob`` with the first key (decrypting with any key)."""
    try:
        return _fernet().rotate(blob.encode()).decode()
    except InvalidToken:
        raise TokenDecryptFailed() from None
