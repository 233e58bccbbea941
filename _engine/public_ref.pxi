# public_ref: the only order id a shopper sees (SPEC 3). The order id plus a
# keyed MAC of it, base32, verified on lookup: unguessable without an index.
# The MAC is SipHash-2-4 (a keyed PRF made for short inputs), run twice with
# a domain byte to give 80 bits; all in C so the hot path pays ~100 ns.

from libc.stdint cimport uint64_t, uint8_t

cdef enum:
    REF_ID_BYTES = 6
    REF_MAC_BYTES = 10
    REF_LENGTH = 26         # base32 of 16 bytes, no padding

cdef const char *BASE32_ALPHABET = b"abcdefghijklmnopqrstuvwxyz234567"


cdef inline uint64_t rotl(uint64_t x, int b) noexcept nogil:
    return (x << b) | (x >> (64 - b))


cdef uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t *data, size_t length) noexcept nogil:
    """SipHash-2-4 with 64-bit output (Aumasson & Bernstein)."""
    cdef uint64_t v0 = 0x736f6d6570736575ULL ^ k0
    cdef uint64_t v1 = 0x646f72616e646f6dULL ^ k1
    cdef uint64_t v2 = 0x6c7967656e657261ULL ^ k0
    cdef uint64_t v3 = 0x7465646279746573ULL ^ k1
    cdef uint64_t m
    cdef size_t i, j, blocks = length // 8
    cdef int r
    for i in range(blocks + 1):
        m = 0
        if i < blocks:
            for j in range(8):
                m |= (<uint64_t>data[i * 8 + j]) << (8 * j)
        else:
            for j in range(length - blocks * 8):
                m |= (<uint64_t>data[i * 8 + j]) << (8 * j)
            m |= (<uint64_t>(length & 0xFF)) << 56
        v3 ^= m
        for r in range(2):
            v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
            v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
            v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
            v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
        v0 ^= m
    v2 ^= 0xFF
    for r in range(4):
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    return v0 ^ v1 ^ v2 ^ v3


cdef void encode_ref(uint64_t k0, uint64_t k1, long long order_id, char *out) noexcept nogil:
    """Write the 26-character public_ref of order_id (plus a NUL) into out."""
    cdef uint8_t raw[16]
    cdef uint8_t message[7]
    cdef uint64_t mac0, mac1
    cdef int i, bits = 0, n = 0
    cdef unsigned int buffer = 0
    for i in range(REF_ID_BYTES):
        raw[i] = (order_id >> (8 * (REF_ID_BYTES - 1 - i))) & 0xFF
        message[i] = raw[i]
    message[6] = 0
    mac0 = siphash24(k0, k1, message, 7)
    message[6] = 1
    mac1 = siphash24(k0, k1, message, 7)
    for i in range(8):
        raw[REF_ID_BYTES + i] = (mac0 >> (8 * i)) & 0xFF
    for i in range(REF_MAC_BYTES - 8):
        raw[REF_ID_BYTES + 8 + i] = (mac1 >> (8 * i)) & 0xFF
    for i in range(16):
        buffer = (buffer << 8) | raw[i]
        bits += 8
        while bits >= 5:
            bits -= 5
            out[n] = BASE32_ALPHABET[(buffer >> bits) & 31]
            n += 1
    if bits:
        out[n] = BASE32_ALPHABET[(buffer << (5 - bits)) & 31]
        n += 1
    out[n] = 0


cdef long long decode_ref(uint64_t k0, uint64_t k1, const char *text, Py_ssize_t length) noexcept nogil:
    """The order id of a public_ref we made, or -1 (wrong length, alphabet or MAC)."""
    cdef char expected[REF_LENGTH + 1]
    cdef long long order_id = 0
    cdef int i, value, bits = 0
    cdef unsigned int buffer = 0, difference = 0
    cdef int got = 0
    if length != REF_LENGTH:
        return -1
    for i in range(REF_LENGTH):
        if b"a" <= text[i] <= b"z":
            value = text[i] - 97
        elif b"2" <= text[i] <= b"7":
            value = text[i] - 50 + 26
        else:
            return -1
        buffer = (buffer << 5) | value
        bits += 5
        if bits >= 8 and got < REF_ID_BYTES:
            bits -= 8
            order_id = (order_id << 8) | ((buffer >> bits) & 0xFF)
            got += 1
    encode_ref(k0, k1, order_id, expected)
    for i in range(REF_LENGTH):  # constant time over the whole text
        difference |= <unsigned char>expected[i] ^ <unsigned char>text[i]
    return -1 if difference else order_id

