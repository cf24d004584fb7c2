"""The engine's decoding threads: a thread pool whose idle threads end on their own.

``concurrent.futures.ThreadPoolExecutor`` keeps its threads until ``shutdown``. A stream
that nobody reads any more but that is still referenced (``model.fit`` stopped by Ctrl-C or
by an error keeps TensorFlow's hold on the stream's prefetching generator) would keep them
for as long as the process lives. Here a thread that finds no work for ``idle`` seconds ends,
and the next ``submit`` starts threads again, so abandoned streams cost no threads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_STOP = object()


class Workers:
    """Up to ``count`` threads named ``<name>_<i>`` running submitted calls in order."""

    # held by the class: a generator closed at interpreter exit shuts its pool down after
    # the module's globals (``queue``, ``threading``, ``_STOP``) are gone
    _Empty = queue.Empty
    _STOP = _STOP
    _current_thread = staticmethod(threading.current_thread)

    def __init__(self, count: int, name: str, *, idle: float = 0.5):
        self.count = max(1, int(count))
        self.name = name
        self.idle = float(idle)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._started = 0
        self._closed = False

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on a worker thread; its ``Future``."""
        future: Future[T] = Future()
        with self._lock:  # the same lock as a thread's decision to end: no call is stranded
            if self._closed:
                raise RuntimeError("cannot submit to workers that were shut down")
            self._queue.put((future, fn, args))
            if len(self._threads) < self.count:
                thread = threading.Thread(
                    target=self._run, name=f"{self.name}_{self._started}", daemon=True
                )
                self._started += 1
                self._threads.append(thread)
                thread.start()
        return future

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            try:
                item = self._queue.get(timeout=self.idle)
            except self._Empty:
                with self._lock:
                    if self._queue.empty():  # idle: end, unless work came in meanwhile
                        self._threads.remove(me)
                        return
                continue
            if item is _STOP:
                with self._lock:
                    self._threads.remove(me)
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self, *, wait: bool = True) -> None:
        """Cancel the calls not started, stop the threads (joined when ``wait``)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
            while True:
                try:
                    item = self._queue.get_nowait()
                except self._Empty:
                    break
                if item is not self._STOP:
                    item[0].cancel()
            for _ in threads:
                self._queue.put(self._STOP)
        if wait:
            for thread in threads:
                if thread is not self._current_thread():
                    thread.join()
