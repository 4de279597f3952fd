"""The storage errors every backend raises and the layers above may catch, so that no caller
needs to know the driver."""

from __future__ import annotations


class StorageUnavailable(Exception):
    """The storage cannot take the write now: the disk is full, or another process held its
    lock too long. Nothing was written, and trying later may succeed."""
