"""Worker processes that build batches into shared memory: the engine's process route.

With threads, every file's Python (opening it, a decoder's own checks, collating) holds the
one GIL of the process, so a thread pool stops scaling once that Python fills one core
(``bench --gil`` measures where). Worker processes each have their own GIL: the trainer's
process only hands out tasks and copies finished batches out of shared memory, which costs
per batch, not per file.

``ProcessWorkers(target, count)`` starts ``count`` processes (multiprocessing's
"forkserver": forked from a clean server process, never from a trainer that runs TensorFlow's
or the stream's threads, which ``fork`` would copy mid-lock). Each receives ``target``
pickled once, then runs ``target(task) -> (array or None, meta)`` for every task it is sent.
The array is written into one of the worker's shared-memory buffers (files in ``/dev/shm``,
unlinked by the trainer once both sides have mapped them, so none outlives the two
processes); the small ``meta`` is pickled through the worker's pipe. ``submit`` deals tasks
to the workers in turn and ``result`` returns them in the order submitted, so the order of
batches is the order of tasks whatever the timing.

Failures are never silent and never hang: an exception raised by ``target`` is re-raised by
``result`` (with the worker's traceback as its cause); a worker that dies (killed, out of
memory, a crash inside a C decoder) makes ``result`` raise ``WorkerDied`` naming its exit
code. Workers ignore Ctrl-C: the trainer's process stops them (``close``).
"""

from __future__ import annotations

import collections
import contextlib
import math
import mmap
import multiprocessing
import os
import pickle
import signal
import tempfile
import threading
import traceback
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

__all__ = ["ProcessWorkers", "WorkerDied", "check_picklable"]

# Modules the fork server imports once, so each worker forked from it starts with them
# (NumPy and the decoders' libraries take most of a worker's start-up).
_PRELOAD = ["numpy", "bytefeed_helpers.engine", "bytefeed_helpers.decoders"]
_CONTEXT: Any = None
_CONTEXT_LOCK = threading.Lock()
_SHM_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
_PAGE = mmap.PAGESIZE


class WorkerDied(RuntimeError):
    """A worker process ended while it had batches to build."""


class _RemoteError(Exception):
    """The traceback of an exception raised in a worker process (the re-raised one's cause)."""


def _context() -> Any:
    """The forkserver context, with its preload set before the server first starts."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
            _CONTEXT = ctx
        return _CONTEXT


def check_picklable(target: Any, what: str) -> bytes:
    """``target`` pickled, or a ValueError saying that ``what`` must pickle to run in worker
    processes (a lambda, a closure or an object holding a lock does not)."""
    try:
        return pickle.dumps(target, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # pickle raises PicklingError, TypeError, AttributeError, ...
        raise ValueError(
            f"parallelism='processes' sends {what} to worker processes, so they must pickle: "
            f"{type(exc).__name__}: {exc}. Use module-level functions or picklable objects "
            "(not lambdas or closures), or parallelism='threads'."
        ) from exc


class ProcessWorkers:
    """``count`` worker processes running ``target`` on submitted tasks, results in order.

    ``target`` must pickle (``check_picklable``); it returns ``(x, meta)`` with ``x`` a NumPy
    array of a fixed-size dtype (or None) and ``meta`` anything picklable. Arrays of Python
    objects go through the pipe pickled instead of shared memory. Not thread-safe: one
    consumer submits and takes results.
    """

    def __init__(self, target: Any, count: int, name: str = "bytefeed"):
        payload = check_picklable(target, "the decoder, collate step and augmentation")
        ctx = _context()
        self.count = max(1, int(count))
        self.name = name
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for i in range(self.count):
            mine, theirs = ctx.Pipe(duplex=True)
            proc = ctx.Process(
                target=_worker_main,
                args=(theirs, payload),
                name=f"{name}-process-{i}",
                daemon=True,  # never outlives the trainer, even if close() is never reached
            )
            proc.start()
            theirs.close()  # the worker's end lives in the worker only: its death is EOF here
            self._conns.append(mine)
            self._procs.append(proc)
        self._next = 0  # the worker the next task goes to
        self._order: collections.deque[tuple[int, int]] = collections.deque()
        self._free: list[list[int]] = [[] for _ in range(self.count)]
        self._buffers: list[int] = [0] * self.count  # buffers made per worker
        self._maps: list[dict[int, mmap.mmap]] = [{} for _ in range(self.count)]
        self._closed = False
        self._finalizer = weakref.finalize(self, _shutdown, self._conns, self._procs, self._maps)

    @property
    def pending(self) -> int:
        """Tasks submitted whose results have not been taken."""
        return len(self._order)

    def submit(self, task: Any) -> None:
        """Send ``task`` to the next worker in turn."""
        if self._closed:
            raise RuntimeError("the worker processes were closed")
        w = self._next
        self._next = (w + 1) % self.count
        free = self._free[w]
        if free:
            buffer = free.pop()
        else:
            buffer = self._buffers[w]
            self._buffers[w] += 1
        self._conns[w].send((buffer, task))
        self._order.append((w, buffer))

    def result(self) -> tuple[np.ndarray | None, Any]:
        """The result of the oldest task not yet taken: ``(x, meta)``, ``x`` a copy the
        caller owns. Re-raises the task's exception; ``WorkerDied`` if its worker ended."""
        w, buffer = self._order.popleft()
        message = self._receive(w)
        self._free[w].append(buffer)
        if message[0] == "error":
            _, exc, remote = message
            raise exc from _RemoteError(remote)
        _, shm, meta = message
        if shm is None:
            return None, meta
        if not isinstance(shm, tuple):  # an array of objects, pickled with the message
            return shm, meta
        _, path, size, shape, dtype = shm
        if path is not None:  # a new or larger buffer: map it, then unlink its name
            old = self._maps[w].pop(buffer, None)
            if old is not None:
                old.close()
            fd = os.open(path, os.O_RDWR)
            try:
                self._maps[w][buffer] = mmap.mmap(fd, size)
            finally:
                os.close(fd)
                os.unlink(path)
        count = math.prod(shape)
        view = np.frombuffer(self._maps[w][buffer], dtype=np.dtype(dtype), count=count)
        return view.reshape(shape).copy(), meta  # NumPy copies without the GIL

    def _receive(self, w: int) -> tuple:
        # A blocking read: the worker's end of the pipe lives only in the worker, so its
        # death is EOF here at once (no polling, which costs a selector per batch).
        try:
            return self._conns[w].recv()
        except (EOFError, OSError):
            proc = self._procs[w]
            proc.join(1.0)
            self.close()
            raise WorkerDied(
                f"{self.name}: worker process {w} ended (exit code {proc.exitcode}) while "
                "building a batch; a negative code is the signal that killed it (-9: killed, "
                "often for memory; -11: a crash in a native decoder; 1: an error it printed, "
                'such as a script that starts streams outside `if __name__ == "__main__":`, '
                "which each worker process imports again). Use parallelism='threads' to see "
                "the error in this process."
            ) from None

    def close(self) -> None:
        """Stop the workers (waiting up to a second each, then terminating them)."""
        if not self._closed:
            self._closed = True
            self._order.clear()
            self._finalizer()


def _shutdown(conns: list[Connection], procs: list[Any], maps: list[dict[int, mmap.mmap]]) -> None:
    for conn in conns:
        with contextlib.suppress(OSError, ValueError):  # already gone
            conn.send(None)
    for proc in procs:
        proc.join(1.0)
        if proc.is_alive():  # busy on a long file: its result is not wanted
            proc.terminate()
            proc.join(1.0)
    for conn in conns:
        conn.close()
    for held in maps:
        for m in held.values():
            m.close()
        held.clear()


def _worker_main(conn: Connection, payload: bytes) -> None:
    """A worker's loop: take ``(buffer, task)``, run the target, answer; None ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's to handle
    target: Callable[[Any], tuple[np.ndarray | None, Any]] = pickle.loads(payload)
    buffers: dict[int, tuple[mmap.mmap, int]] = {}
    made: list[str] = []
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return  # the trainer is gone
            if message is None:
                return
            buffer, task = message
            try:
                x, meta = target(task)
                reply = ("ok", _put(x, buffer, buffers, made), meta)
            except BaseException as exc:  # sent back whole: the trainer re-raises it
                remote = traceback.format_exc()
                reply = ("error", _sendable(exc), remote)
            conn.send(reply)
    finally:
        for m, _ in buffers.values():
            m.close()
        for path in made:  # names the trainer never mapped (it unlinks those it maps)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _put(
    x: np.ndarray | None,
    buffer: int,
    buffers: dict[int, tuple[mmap.mmap, int]],
    made: list[str],
) -> Any:
    """Write ``x`` into shared buffer ``buffer``; what the trainer needs to read it back:
    ``(buffer, new path or None, size, shape, dtype)``, or None, or ``x`` itself (objects)."""
    if x is None:
        return None
    x = np.asarray(x)
    if x.dtype.hasobject:
        return x
    x = np.ascontiguousarray(x)
    held = buffers.get(buffer)
    path = None
    if held is None or held[1] < x.nbytes:
        # a new buffer, a quarter larger than asked, so batches that grow a little (padded
        # audio, text) do not make a new one each time
        size = max(_PAGE, -(-int(x.nbytes * 1.25) // _PAGE) * _PAGE)
        fd, path = tempfile.mkstemp(prefix="bytefeed-", dir=_SHM_DIR)
        try:
            os.ftruncate(fd, size)
            m = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        if held is not None:
            held[0].close()
        buffers[buffer] = held = (m, size)
        made.append(path)
    dst = np.frombuffer(held[0], dtype=np.uint8, count=x.nbytes)
    np.copyto(dst, x.reshape(-1).view(np.uint8))
    return (buffer, path, held[1], x.shape, x.dtype.str)


def _sendable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
