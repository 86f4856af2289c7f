"""Signed, expiring addresses for files the bot sends where a channel takes only a URL (Zalo's photos) or no
files at all (documents on Zalo go as a download link). The bytes are kept in the content-addressed FileStore;
the token names them, with their type, name and expiry, under an HMAC, so nothing is looked up to check it and a
token cannot be guessed, altered or used after it expires."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from handlers.base import Document
from storage.files import FileStore, local_dir

PHOTO_TTL = timedelta(days=7)  # a photo stays in the chat: the platform may fetch it again when it is opened
DOCUMENT_TTL = timedelta(days=1)  # an export holds personal data; zalo.document_link says "one day"
KEY_FILE = "file-links.key"
SIGNATURE_BYTES = 16


@dataclass(frozen=True)
class Linked:
    digest: str
    mime: str
    filename: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FileLinks:
    def __init__(self, files: FileStore, base_url: str, secret: bytes, clock: Callable[[], datetime]) -> None:
        self.files = files
        self.base_url = base_url.rstrip("/")
        self._secret = secret
        self.clock = clock

    async def photo(self, document: Document) -> str:
        return await self._link(document, PHOTO_TTL)

    async def document(self, document: Document) -> str:
        return await self._link(document, DOCUMENT_TTL)

    async def _link(self, document: Document, ttl: timedelta) -> str:
        digest = await self.files.put(document.content)
        expires = int((self.clock() + ttl).timestamp())
        payload = (bytes.fromhex(digest) + expires.to_bytes(8, "big")
                   + f"{document.mime}\0{document.filename}".encode())
        return f"{self.base_url}/f/{_b64(payload)}.{_b64(self._sign(payload))}"

    def keyed(self, text: str) -> str:
        """A digest of `text` only this deployment can make (HMAC with the links' secret): a client's address kept
        in the database for its rate limit cannot be found again by hashing every address."""
        return hmac.digest(self._secret, b"keyed\0" + text.encode(), hashlib.sha256).hex()[:32]

    def _sign(self, payload: bytes) -> bytes:
        return hmac.digest(self._secret, payload, hashlib.sha256)[:SIGNATURE_BYTES]

    def open(self, token: str) -> Linked | None:
        """What `token` names, or None when it was not made here, was altered or has expired."""
        body, _, signature = token.partition(".")
        try:
            payload, given = _unb64(body), _unb64(signature)
        except (binascii.Error, ValueError):
            return None
        if len(payload) < 41 or not hmac.compare_digest(given, self._sign(payload)):
            return None
        if int.from_bytes(payload[32:40], "big") <= self.clock().timestamp():
            return None
        mime, _, filename = payload[40:].decode().partition("\0")
        return Linked(payload[:32].hex(), mime, filename)

    async def read(self, token: str) -> tuple[Linked, bytes] | None:
        linked = self.open(token)
        content = await self.files.get(linked.digest) if linked else None
        return (linked, content) if linked and content is not None else None


def link_secret(configured: str | None, db_path: str | Path) -> bytes:
    """DANVAN_FILE_SECRET when set; else a random key kept beside the database (made on first use, readable by
    this user only), so that links survive a restart; a database in memory gets a key for the process."""
    if configured:
        return configured.encode()
    if str(db_path) == ":memory:":
        return secrets.token_bytes(32)
    path = local_dir(db_path) / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as out:
        out.write(key.hex())
    return key
