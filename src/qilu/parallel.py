"""Chunks of work spread over processes and taken back in the order given: at most two chunks
a worker in flight, so a stream of a million rows never sits in memory at once."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

Chunk = TypeVar("Chunk")
Done = TypeVar("Done")


def in_order(
    function: Callable[[Chunk], Done], chunks: Iterable[Chunk], workers: int
) -> Iterator[Done]:
    """`function` of each chunk, in order; in `workers` processes when there are more than one
    (`function` and the chunks must pickle: a bound method of a plain object does)."""
    if workers <= 1:
        yield from map(function, chunks)
        return
    # Workers fork from a server process that imported the program (a script) and the module
    # of the work once, when it started (the first time this process asked for workers): they
    # start at once instead of each importing the platform again (two seconds apiece), so a
    # long-lived sweeper's second extract pays nothing. The server holds no threads to fork.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", function.__module__])
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        window: deque[Future[Done]] = deque()
        for chunk in chunks:
            window.append(pool.submit(function, chunk))
            if len(window) > 2 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
