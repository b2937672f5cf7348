"""Dynamic micro-batching: the images of concurrent requests, gathered into one ONNX Runtime run.

A batch starts with the first image waiting and takes every image that arrives within
``batch_timeout_ms`` of it, up to ``max_batch_size``. ``workers`` batches of a model run at the
same time, each in a thread, so the event loop keeps accepting requests while they run.

Admission is bounded: at most ``max_queue`` images of a model are accepted and not yet answered
(decoding, waiting or running); beyond that a request is refused at once with a 503, before its
images are decoded, instead of queueing without limit. An image whose request was cancelled
(its client hung up) while it waited for a batch is dropped, not run.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from zoo.model import Model

from .errors import Overloaded
from .metrics import ServeMetrics
from .settings import ServeSettings


@dataclass
class _Job:
    pixels: np.ndarray
    """One model-sized (height, width, 3) uint8 image."""
    answer: asyncio.Future


class Batcher:
    """One model's queue and inference workers. ``start()`` and ``stop()`` run in the event loop."""

    def __init__(self, model: Model, settings: ServeSettings, metrics: ServeMetrics):
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.in_flight = 0
        self.waiting = 0
        """Images queued or in a batch still gathering: not yet running."""
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._workers: list[asyncio.Task] = []
        self._executor = ThreadPoolExecutor(
            settings.workers, thread_name_prefix=f"zoo-inference-{model.name}"
        )

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.settings.workers)]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._executor.shutdown()

    @contextmanager
    def admit(self, images: int):
        """Room for ``images`` more images until the block ends, or ``Overloaded``."""
        if self.in_flight + images > self.settings.max_queue:
            raise Overloaded(
                f"model {self.model.name!r} is busy ({self.in_flight} images in flight); "
                "retry later",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )
        self._count_in_flight(images)
        try:
            yield
        finally:
            self._count_in_flight(-images)

    async def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """The class probabilities of one (height, width, 3) image, computed in some batch."""
        answer = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(pixels, answer))
        self._count_waiting(1)
        return await answer

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._next_batch()
            self._count_waiting(-len(jobs))
            jobs = [job for job in jobs if not job.answer.cancelled()]  # their clients left
            if not jobs:
                continue
            started = time.perf_counter()
            try:
                batch = np.stack([job.pixels for job in jobs])
                rows = await loop.run_in_executor(self._executor, self.model.probabilities, batch)
            except Exception as error:  # the requests answer 500; the worker carries on
                for job in jobs:
                    if not job.answer.done():
                        job.answer.set_exception(error)
                continue
            finally:
                self.metrics.inference.labels(model=self.model.name).observe(
                    time.perf_counter() - started
                )
                self.metrics.batch_size.labels(model=self.model.name).observe(len(jobs))
            for job, row in zip(jobs, rows, strict=True):
                if not job.answer.done():  # its request may have been cancelled meanwhile
                    job.answer.set_result(row)

    async def _next_batch(self) -> list[_Job]:
        jobs = [await self._queue.get()]
        deadline = time.monotonic() + self.settings.batch_timeout_ms / 1000
        while len(jobs) < self.settings.max_batch_size:
            if not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                jobs.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return jobs

    def _count_in_flight(self, change: int) -> None:
        self.in_flight += change
        self.metrics.in_flight.labels(model=self.model.name).set(self.in_flight)

    def _count_waiting(self, change: int) -> None:
        self.waiting += change
        self.metrics.queue_depth.labels(model=self.model.name).set(self.waiting)
