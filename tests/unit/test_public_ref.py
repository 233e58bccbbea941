"""public_ref's MAC is SipHash-2-4: a plain-Python SipHash, checked against the paper's test
vector, reproduces the engine's public_ref for a known key."""

from __future__ import annotations

import base64

from dropsvc import Engine

MASK = (1 << 64) - 1


def rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & MASK


def sip_round(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
    v0 = (v0 + v1) & MASK
    v1 = rotl(v1, 13) ^ v0
    v0 = rotl(v0, 32)
    v2 = (v2 + v3) & MASK
    v3 = rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & MASK
    v3 = rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & MASK
    v1 = rotl(v1, 17) ^ v2
    return v0, v1, rotl(v2, 32), v3


def siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4, 64-bit output (Aumasson & Bernstein), written from the paper."""
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:16], "little")
    v = (k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573)
    tail = len(data) % 8
    blocks = [data[i:i + 8] for i in range(0, len(data) - tail, 8)]
    blocks.append(data[len(data) - tail:] + bytes(7 - tail) + bytes([len(data) & 0xFF]))
    for block in blocks:
        m = int.from_bytes(block, "little")
        v = (v[0], v[1], v[2], v[3] ^ m)
        for _ in range(2):
            v = sip_round(*v)
        v = (v[0] ^ m, v[1], v[2], v[3])
    v = (v[0], v[1], v[2] ^ 0xFF, v[3])
    for _ in range(4):
        v = sip_round(*v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def test_reference_siphash_matches_the_paper():
    # SipHash paper, appendix A: key 00..0f, message 00..0e
    assert siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5


def expected_ref(key: bytes, order_id: int) -> str:
    """The id (6 bytes, big-endian), then 10 bytes of MAC: SipHash of id + 0x00 (8), of id + 0x01 (2)."""
    ident = order_id.to_bytes(6, "big")
    mac = siphash24(key, ident + b"\x00").to_bytes(8, "little") + siphash24(key, ident + b"\x01").to_bytes(8, "little")
    return base64.b32encode(ident + mac[:10]).decode().rstrip("=").lower()


def test_public_ref_is_the_id_and_its_siphash_mac(db_path):
    key = bytes(range(32))
    with Engine(db_path) as engine:
        engine.write(lambda tx: tx.execute("UPDATE settings SET value = ? WHERE key = 'public_ref_key'",
                                           (key.hex(),)))
    with Engine(db_path) as engine:
        for order_id in (1, 2, 255, 10**6, 2**47 - 1):
            ref = engine.public_ref(order_id)
            assert ref == expected_ref(key, order_id)
            assert engine.order_id_from_ref(ref) == order_id
