"""What a disk holds after a power loss, rebuilt from the fault VFS's records (see _engine/fault_vfs.c).

For each file the VFS tracked: ``<path>~synced`` is its content at its last completed sync (absent:
never synced), ``<path>~dirty`` the (offset, length) pairs written since, and ``<path>`` everything
written. The rebuild keeps the synced image and decides each sector written since, by ``how``:

- ``drop``: every unsynced write lost;
- ``keep``: every unsynced write on the disk;
- ``mix``: each sector old or new (writes torn at sector boundaries; powersafe overwrite holds);
- ``tear``: each sector old, new or garbage (no powersafe overwrite: a write may garble the
  whole sector it touches, synced bytes included). Runs in this mode register the VFS without
  the powersafe claim, so SQLite pads its WAL commits to sector boundaries.

The file's length is the synced or the written one (``mix``/``tear``: either). A file never synced
is gone (``drop``), kept (``keep``) or either. The ``-shm`` file is gone; the ``-lock`` page is the
copy the VFS made at the crash point, as the engine's process left it.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
from pathlib import Path

HOW = ("drop", "keep", "mix", "tear")
IMAGE, DIRTY = "~synced", "~dirty"
DATABASE_SUFFIXES = (".db", ".db-wal", ".db-journal")  # what the fault VFS tracks in a run's folder


def tracked_files(folder: Path) -> list[Path]:
    """The database files in folder (main files, WALs, journals), without the VFS's own records."""
    return sorted(p for p in folder.iterdir() if p.name.endswith(DATABASE_SUFFIXES))


def mark_durable(folder: Path) -> None:
    """Take what is in folder now as synced (a seeded database made before the run)."""
    for path in tracked_files(folder):
        shutil.copyfile(path, f"{path}{IMAGE}")
        Path(f"{path}{DIRTY}").unlink(missing_ok=True)
    for shm in folder.glob("*-shm"):
        shm.unlink()


def dirty_sectors(path: Path, old: bytes, new: bytes, sector: int) -> set[int]:
    """Sectors written since the last sync: the VFS's list, and any byte that differs."""
    sectors: set[int] = set()
    log = Path(f"{path}{DIRTY}")
    raw = log.read_bytes() if log.exists() else b""
    for offset, length in struct.iter_unpack("=qq", raw[: len(raw) // 16 * 16]):
        sectors.update(range(offset // sector, (offset + max(length, 1) - 1) // sector + 1))
    longest = max(len(old), len(new))
    for start in range(0, longest, sector):
        if old[start:start + sector] != new[start:start + sector]:
            sectors.add(start // sector)
    return sectors


def rebuilt(path: Path, rng: random.Random, how: str, sector: int) -> bytes | None:
    """The content a disk could hold for path after the power went out (None: no such file)."""
    image = Path(f"{path}{IMAGE}")
    old = image.read_bytes() if image.exists() else None
    new = path.read_bytes()
    if old is None and (how == "drop" or (how != "keep" and rng.random() < 0.5)):
        return None  # never synced: its name may not have reached the disk
    base = old or b""
    if how == "keep":
        return new
    length = len(base) if how == "drop" else rng.choice((len(base), len(new)))
    out = bytearray(base[:length].ljust(length, b"\0"))
    if how == "drop":
        return bytes(out)
    for index in sorted(dirty_sectors(path, base, new, sector)):
        start = index * sector
        if start >= length:
            break
        end = min(start + sector, length)
        pick = rng.randrange(3 if how == "tear" else 2)
        if pick == 1:
            out[start:end] = new[start:end].ljust(end - start, b"\0")
        elif pick == 2:
            out[start:end] = rng.randbytes(end - start)
    return bytes(out)


def power_loss(folder: Path, rng: random.Random, how: str, sector: int, lock_image: Path | None) -> list[str]:
    """Rebuild every file of folder as the disk could hold it; returns what became of each."""
    if how not in HOW:
        raise ValueError(f"how must be one of {HOW}")
    fates = []
    for path in tracked_files(folder):
        content = rebuilt(path, rng, how, sector)
        if content is None:
            path.unlink()
            fates.append(f"{path.name}: gone")
        else:
            path.write_bytes(content)
            fates.append(f"{path.name}: {len(content)} bytes")
    for side in folder.iterdir():
        if side.name.endswith((IMAGE, DIRTY, ".tmp", "-shm")):
            side.unlink()
    if lock_image is not None and lock_image.exists():
        for lock in folder.glob("*-lock"):
            shutil.copyfile(lock_image, lock)
    return fates


def flip_byte_in_a_page(db: Path, rng: random.Random) -> int:
    """Flip every bit of one b-tree page's type byte in a checkpointed file; returns the page number."""
    data = bytearray(db.read_bytes())
    page_size = struct.unpack(">H", data[16:18])[0] or 65536
    pages = [n for n in range(2, len(data) // page_size + 1) if data[(n - 1) * page_size] in (2, 5, 10, 13)]
    if not pages:
        raise ValueError(f"{db} has no b-tree page past the first")
    page = rng.choice(pages)
    data[(page - 1) * page_size] ^= 0xFF
    fd = os.open(db, os.O_WRONLY)
    try:
        os.pwrite(fd, bytes(data[(page - 1) * page_size:page * page_size]), (page - 1) * page_size)
    finally:
        os.close(fd)
    return page
