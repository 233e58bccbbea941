"""The parts of bench/crash.py: the write paths, the disk after a power loss, one fault point at a time."""
