"""API keys: where they come from, how a presented token is checked, where the server may listen.

Keys are kept only as SHA-256 digests. A presented bearer token is hashed and compared with
every known digest using :func:`hmac.compare_digest`, always against all of them, so the time a
check takes says nothing about which key (or how much of one) matched.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from pathlib import Path
from typing import Iterable, Optional

from cgan_core.errors import UsageError

KEYS_ENV = "CGAN_API_KEYS"
_HEX_DIGEST = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")


def hash_key(key: str) -> str:
    """SHA-256 hex digest of an API key (what a keys file holds)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeys:
    """The set of accepted API keys, held as SHA-256 digests."""

    def __init__(self, digests: Iterable[str] = ()) -> None:
        self._digests = [bytes.fromhex(d) for d in digests]

    @property
    def enabled(self) -> bool:
        """Whether any key is configured (otherwise every request is let in)."""
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def verify(self, token: Optional[str]) -> bool:
        """Whether ``token`` is one of the keys; compares in constant time against every digest."""
        if not token:
            return False
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        matched = False
        for digest in self._digests:  # no early exit: the time is the same whichever key matches
            matched |= hmac.compare_digest(presented, digest)
        return matched

    @classmethod
    def load(cls, keys_file: Optional[str] = None, environ: Optional[dict[str, str]] = None) -> "ApiKeys":
        """Collect keys from ``CGAN_API_KEYS`` (plain keys, comma-separated) and a digests file.

        Raises:
            UsageError: the file is missing or a line is not a SHA-256 hex digest.
        """
        environ = os.environ if environ is None else environ
        digests = [hash_key(key.strip()) for key in environ.get(KEYS_ENV, "").split(",") if key.strip()]
        if keys_file:
            digests += read_digest_file(Path(keys_file))
        return cls(digests)


def read_digest_file(path: Path) -> list[str]:
    """Read SHA-256 hex digests, one per line (``#`` comments and blank lines ignored).

    Raises:
        UsageError: the file cannot be read or a line is not a digest.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read API keys file '{path}': {exc}") from None
    digests = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = _HEX_DIGEST.match(text)
        if match is None:
            raise UsageError(f"{path}:{number}: expected a SHA-256 hex digest of a key (64 hex digits, "
                             "e.g. from 'cgan serve --hash-key KEY'), not a plain key")
        digests.append(match.group(1).lower())
    return digests


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen_policy(host: str, keys: ApiKeys, insecure_no_auth: bool) -> None:
    """Refuse to listen beyond loopback without keys unless explicitly made insecure.

    Raises:
        UsageError: ``host`` is not loopback, no keys are configured and ``insecure_no_auth`` is off.
    """
    if keys.enabled or insecure_no_auth or is_loopback(host):
        return
    raise UsageError(f"refusing to serve on '{host}' without API keys; set {KEYS_ENV}=KEY1,KEY2 or "
                     "--api-keys-file FILE (SHA-256 digests), listen on 127.0.0.1, or pass --insecure-no-auth")
