"""HMAC keyed by a secret handle: sign without reading the key."""

from ._host import imports

#: Algorithms for :func:`hmac`.
SHA256 = "sha256"
SHA512 = "sha512"
SHA1 = "sha1"


def _bytes(data):
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)


def hmac(algorithm, key, data):
    """HMAC of ``data`` (bytes or str, as UTF-8) keyed by the secret ``key``'s
    value; the raw MAC bytes. ``algorithm``: ``"sha256"``, ``"sha512"`` or
    ``"sha1"`` (legacy schemes only)."""
    wit = imports().crypto
    try:
        alg = getattr(wit.HmacAlgorithm, algorithm.upper())
    except AttributeError:
        raise ValueError(f"unknown HMAC algorithm {algorithm!r}: use sha256, sha512 or sha1") from None
    return wit.hmac(alg, key._handle, _bytes(data))


def hmac_sha256(key, data):
    return hmac(SHA256, key, data)


def hmac_sha512(key, data):
    return hmac(SHA512, key, data)


def hmac_sha1(key, data):
    return hmac(SHA1, key, data)


def to_hex(mac):
    """Lowercase hex, for signatures in headers."""
    return bytes(mac).hex()
