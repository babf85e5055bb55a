"""SNMPv3 User-based Security Model (RFC 3414, 3826, 7860): keys, authentication, AES privacy."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # cryptography >= 43 moved CFB to the "decrepit" namespace (still RFC 3826's mode)
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover
    from cryptography.hazmat.primitives.ciphers.modes import CFB

# auth protocol -> (hash name, length of the truncated HMAC in msgAuthenticationParameters)
AUTH: dict[str, tuple[str, int]] = {
    "MD5": ("md5", 12),
    "SHA": ("sha1", 12),
    "SHA1": ("sha1", 12),
    "SHA224": ("sha224", 16),
    "SHA256": ("sha256", 24),
    "SHA384": ("sha384", 32),
    "SHA512": ("sha512", 48),
}
# priv protocol -> AES key size in bytes (AES-192/256 keys extended as net-snmp does: Blumenthal)
PRIV: dict[str, int] = {"AES": 16, "AES128": 16, "AES192": 24, "AES256": 32}


def norm(protocol: str) -> str:
    """Protocol names as inventories spell them (SHA-256, aes-256) to table keys (SHA256)."""
    return protocol.upper().replace("-", "").replace("_", "")


class UsmError(ValueError):
    """A v3 parameter is unknown or a message fails authentication or decryption."""


class UnknownUserError(UsmError):
    """A v3 message names a user this side does not know."""


@lru_cache(maxsize=1024)
def password_to_key(hash_name: str, password: str) -> bytes:
    """RFC 3414 A.2: hash 1 MiB of the repeated password (cached: it is the costly part)."""
    if not password:
        raise UsmError("empty SNMPv3 passphrase")
    pw = password.encode()
    h = hashlib.new(hash_name)
    reps, rest = divmod(1048576, len(pw))
    h.update(pw * reps + pw[:rest])
    return h.digest()


ENGINE_ID_MIN, ENGINE_ID_MAX = 5, 32  # RFC 3411 SnmpEngineID SIZE(5..32)
_CACHE_ENTRIES = 1024  # localised keys kept (LRU); a busy receiver knows tens of engines
_CACHE_MAX_INPUT = 256  # bytes of password or engine id beyond which a key is not cached
_cache: OrderedDict[tuple[str, str, bytes], bytes] = OrderedDict()
_cache_lock = threading.Lock()


def localize(hash_name: str, password: str, engine_id: bytes) -> bytes:
    """The key localized to one authoritative engine: H(Ku || engineID || Ku).

    Cached in a bounded LRU (entries and key size): engine ids come from the network, so an
    unbounded cache would grow with every forged id (the trap receiver also refuses ids outside
    5..32 bytes before it gets here).
    """
    key = (hash_name, password, bytes(engine_id))
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    ku = password_to_key(hash_name, password)
    out = hashlib.new(hash_name, ku + engine_id + ku).digest()
    if len(engine_id) <= ENGINE_ID_MAX and len(password) <= _CACHE_MAX_INPUT:
        with _cache_lock:
            _cache[key] = out
            while len(_cache) > _CACHE_ENTRIES:
                _cache.popitem(last=False)
    return out


def localize_cache_size() -> tuple[int, int]:
    """Entries in the localised-key cache and the bytes of their keys (for tests and metrics)."""
    with _cache_lock:
        return len(_cache), sum(len(p) + len(e) for _, p, e in _cache)


@dataclass(frozen=True, slots=True)
class UsmUser:
    """One v3 user's protocols and passphrases (clear text: only inside the collector)."""

    name: str
    auth_protocol: str = ""
    auth_password: str = ""
    priv_protocol: str = ""
    priv_password: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "auth_protocol", norm(self.auth_protocol))
        object.__setattr__(self, "priv_protocol", norm(self.priv_protocol))
        if self.auth_protocol and self.auth_protocol not in AUTH:
            raise UsmError(f"auth protocol {self.auth_protocol!r} unknown "
                           f"(expected one of {', '.join(AUTH)})")
        if self.priv_protocol and self.priv_protocol not in PRIV:
            raise UsmError(f"priv protocol {self.priv_protocol!r} unknown "
                           f"(expected one of {', '.join(PRIV)})")
        if self.priv_protocol and not self.auth_protocol:
            raise UsmError("privacy without authentication is not allowed in SNMPv3")

    @property
    def flags(self) -> int:
        """msgFlags security bits: 0 noAuthNoPriv, 1 authNoPriv, 3 authPriv."""
        return (1 if self.auth_protocol else 0) | (2 if self.priv_protocol else 0)

    @property
    def auth_len(self) -> int:
        """Length of msgAuthenticationParameters."""
        return AUTH[self.auth_protocol.upper()][1] if self.auth_protocol else 0

    def auth_key(self, engine_id: bytes) -> bytes:
        """Localized authentication key."""
        return localize(AUTH[self.auth_protocol.upper()][0], self.auth_password, engine_id)

    def priv_key(self, engine_id: bytes) -> bytes:
        """Localized privacy key, extended with H(key) until long enough (Blumenthal)."""
        hname = AUTH[self.auth_protocol.upper()][0]
        key = localize(hname, self.priv_password, engine_id)
        size = PRIV[self.priv_protocol.upper()]
        while len(key) < size:
            key += hashlib.new(hname, key).digest()
        return key[:size]

    def sign(self, engine_id: bytes, whole_msg: bytes) -> bytes:
        """The truncated HMAC over the message (auth params zeroed)."""
        hname, n = AUTH[self.auth_protocol.upper()]
        return hmac.new(self.auth_key(engine_id), whole_msg, hname).digest()[:n]

    def verify(self, engine_id: bytes, whole_msg_zeroed: bytes, mac: bytes) -> bool:
        """Check a received message's HMAC."""
        return hmac.compare_digest(self.sign(engine_id, whole_msg_zeroed), mac)

    def _cipher(self, engine_id: bytes, boots: int, etime: int, salt: bytes) -> Cipher[CFB]:
        iv = boots.to_bytes(4, "big") + etime.to_bytes(4, "big") + salt
        return Cipher(algorithms.AES(self.priv_key(engine_id)), CFB(iv))

    def encrypt(self, engine_id: bytes, boots: int, etime: int, salt: bytes,
                plain: bytes) -> bytes:
        """RFC 3826 AES-CFB128 with IV = boots || time || salt."""
        enc = self._cipher(engine_id, boots, etime, salt).encryptor()
        return enc.update(plain) + enc.finalize()

    def decrypt(self, engine_id: bytes, boots: int, etime: int, salt: bytes,
                data: bytes) -> bytes:
        """Inverse of encrypt."""
        if len(salt) != 8:
            raise UsmError(f"privacy parameters are {len(salt)} bytes, expected 8")
        dec = self._cipher(engine_id, boots, etime, salt).decryptor()
        return dec.update(data) + dec.finalize()
