"""Per-thread scratch buffers for the temporaries every decode allocates anew.

Decoding a file allocates the same large temporaries each time (a decoded JPEG before its
resize, the resize's intermediate, integer samples before resampling). Fresh memory costs a
page fault per 4 KiB on first touch, which on small virtual machines rivals the decoding itself;
a buffer kept per thread is touched once. Only temporaries go here: a caller uses the buffer
until its call returns and never hands it out.
"""

from __future__ import annotations

import threading

import numpy as np

_LOCAL = threading.local()


def scratch(nbytes: int, slot: str) -> np.ndarray:
    """A uint8 buffer of ``nbytes`` owned by this thread and ``slot``, reused call after call.

    It grows (to at least 1 MiB) when asked for more; its contents are undefined.
    """
    buf = getattr(_LOCAL, slot, None)
    if buf is None or buf.nbytes < nbytes:
        buf = np.empty(max(nbytes, 1 << 20), np.uint8)
        setattr(_LOCAL, slot, buf)
    return buf[:nbytes]
