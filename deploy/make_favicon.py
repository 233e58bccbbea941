"""Draw the site icon, static/favicon.ico: a white drop on the page's accent blue, standard library only.

    python deploy/make_favicon.py [PATH]      (default: static/favicon.ico)

An ICO file holding one PNG per size (every browser since IE 9 reads PNG inside ICO).
tests/integration/test_shopper_pages.py checks that the committed icon is what this draws.
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from pathlib import Path

SIZES = (16, 32, 48)
ACCENT = (0x0B, 0x57, 0xA4)  # --accent in static/app.css
WHITE = (0xFF, 0xFF, 0xFF)
CORNER = 0.2  # the tile's corner radius, as a fraction of its side
DROP_CENTER, DROP_RADIUS, DROP_TIP = (0.5, 0.62), 0.24, (0.5, 0.14)
SUBSAMPLES = 4  # per pixel and axis: the edges are antialiased
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "static" / "favicon.ico"


def in_tile(x: float, y: float) -> bool:
    """Inside the rounded square that fills the icon."""
    dx = max(CORNER - x, x - (1 - CORNER), 0.0)
    dy = max(CORNER - y, y - (1 - CORNER), 0.0)
    return dx * dx + dy * dy <= CORNER * CORNER


def in_drop(x: float, y: float) -> bool:
    """Inside the drop: a circle, and the cone from the tip to where its sides touch the circle."""
    (cx, cy), (tx, ty) = DROP_CENTER, DROP_TIP
    if (x - cx) ** 2 + (y - cy) ** 2 <= DROP_RADIUS ** 2:
        return True
    half_angle = math.asin(DROP_RADIUS / (cy - ty))
    touch_y = ty + (cy - ty) * math.cos(half_angle) ** 2
    return ty <= y <= touch_y and abs(x - tx) <= (y - ty) * math.tan(half_angle)


def draw(size: int) -> bytes:
    """The icon at ``size`` x ``size`` pixels: RGBA rows, top to bottom."""
    pixels = bytearray()
    samples = SUBSAMPLES * SUBSAMPLES
    for row in range(size):
        for col in range(size):
            red = green = blue = covered = 0
            for sub in range(samples):
                x = (col + (sub % SUBSAMPLES + 0.5) / SUBSAMPLES) / size
                y = (row + (sub // SUBSAMPLES + 0.5) / SUBSAMPLES) / size
                if in_tile(x, y):
                    r, g, b = WHITE if in_drop(x, y) else ACCENT
                    red, green, blue, covered = red + r, green + g, blue + b, covered + 1
            if covered:
                pixels += bytes((red // covered, green // covered, blue // covered, 255 * covered // samples))
            else:
                pixels += bytes(4)
    return bytes(pixels)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(size: int, rgba: bytes) -> bytes:
    """A PNG (8-bit RGBA, no filtering) of square RGBA rows."""
    stride = size * 4
    raw = b"".join(b"\0" + rgba[row * stride:(row + 1) * stride] for row in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def ico(sizes: tuple[int, ...] = SIZES) -> bytes:
    """An ICO file with one PNG image per size (each under 256 px)."""
    images = [png(size, draw(size)) for size in sizes]
    offset = 6 + 16 * len(images)
    entries = b""
    for size, image in zip(sizes, images, strict=True):
        entries += struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(image), offset)
        offset += len(image)
    return struct.pack("<HHH", 0, 1, len(images)) + entries + b"".join(images)


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else DEFAULT_PATH
    path.write_bytes(ico())
    print(f"{path}: {path.stat().st_size} bytes, {', '.join(f'{s}x{s}' for s in SIZES)}")


if __name__ == "__main__":
    main(sys.argv[1:])
