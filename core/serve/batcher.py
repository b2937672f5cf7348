"""Dynamic micro-batching: the images of concurrent requests, gathered into one ONNX Runtime run.

Batching costs nothing when the server is idle: an image that finds the model free and nothing
queued runs at once, and the images that arrive while a batch runs make up the next one, up to
``max_batch_size`` (Triton's dynamic batcher with no queue delay). ``batch_timeout_ms`` > 0
makes every batch wait that long after its first image for company instead. ``workers``
batches of a model run at the same time, each in a thread, so the event loop keeps accepting
requests while they run.

Admission is bounded: at most ``max_queue`` images of a model are accepted and not yet answered
(decoding, waiting or running); beyond that a request is refused at once with a 503, before its
images are decoded, instead of queueing without limit. An image that has waited
``queue_timeout_ms`` without its batch starting is taken out of the queue and its request gets a
503 at that moment. An image whose request was cancelled (its client hung up, or it timed out)
while it waited for a batch is dropped, not run.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import numpy as np

from zoo.base.errors import NonFiniteScores
from zoo.runtime.model import Model
from zoo.serve.errors import Overloaded, QueueTimeout
from zoo.serve.metrics import ServeMetrics
from zoo.serve.settings import ServeSettings


@dataclass
class _Job:
    pixels: np.ndarray
    """One model-sized (height, width, 3) uint8 image."""
    answer: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)
    started: bool = False
    """Taken into a batch: it will be run, whatever happens to its request."""


class Batcher:
    """One model's queue and inference workers. ``start()`` and ``stop()`` run in the event loop."""

    def __init__(self, name: str, model: Model, settings: ServeSettings, metrics: ServeMetrics):
        self.name = name
        self.model = model
        self.settings = settings
        self.metrics = metrics.for_model(name)
        self.in_flight = 0
        self.waiting = 0
        """Images queued or in a batch still gathering: not yet running."""
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._workers: list[asyncio.Task] = []
        self._executor = ThreadPoolExecutor(
            settings.workers, thread_name_prefix=f"zoo-inference-{name}"
        )

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.settings.workers)]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._executor.shutdown()

    async def warm_up(self) -> None:
        """One run of one blank image: what the first request would otherwise pay (the
        runtime's first-run allocations) is paid before the model is declared ready, and a
        model that cannot run at all is never ready. Its scores are not looked at: a blank
        image is no test of them."""
        height, width = self.model.input_size
        blank = np.zeros((1, height, width, 3), np.uint8)
        with suppress(NonFiniteScores):
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self.model.probabilities, blank
            )

    @contextmanager
    def admit(self, images: int):
        """Room for ``images`` more images until the block ends, or ``Overloaded``."""
        if self.in_flight + images > self.settings.max_queue:
            raise Overloaded(
                f"model {self.name!r} is busy ({self.in_flight} images in flight, at most "
                f"{self.settings.max_queue}: --max-queue); retry later",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )
        self._count_in_flight(images)
        try:
            yield
        finally:
            self._count_in_flight(-images)

    async def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """The class probabilities of one (height, width, 3) image, computed in some batch;
        ``QueueTimeout`` if its batch has not started within ``queue_timeout_ms``."""
        job = _Job(pixels, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        self._count_waiting(1)
        timeout = self.settings.queue_timeout_ms / 1000
        if not timeout:
            return await job.answer
        try:
            return await asyncio.wait_for(asyncio.shield(job.answer), timeout)
        except TimeoutError:
            if job.started:  # its batch is running: the answer is on its way
                return await job.answer
            job.answer.cancel()  # dropped when a batch takes it out of the queue
            raise QueueTimeout(
                f"model {self.name!r} did not start this request within "
                f"{self.settings.queue_timeout_ms:g} ms (--queue-timeout-ms); retry later",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            ) from None

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._next_batch()
            self._count_waiting(-len(jobs))
            jobs = [job for job in jobs if not job.answer.cancelled()]  # their clients left
            if not jobs:
                continue
            started = time.perf_counter()
            for job in jobs:
                job.started = True
            self.metrics.queued(sum(started - job.queued for job in jobs))
            try:
                batch = np.stack([job.pixels for job in jobs])
                rows = await loop.run_in_executor(self._executor, self.model.probabilities, batch)
            except Exception as error:  # the requests answer 500; the worker carries on
                for job in jobs:
                    if not job.answer.done():
                        job.answer.set_exception(error)
                continue
            finally:
                self.metrics.ran(len(jobs), time.perf_counter() - started)
            for job, row in zip(jobs, rows, strict=True):
                if not job.answer.done():  # its request may have been cancelled meanwhile
                    job.answer.set_result(row)

    async def _next_batch(self) -> list[_Job]:
        """The first image waiting, and those queued behind it; with a batch timeout, also
        those that arrive within it."""
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
        self.metrics.in_flight.set(self.in_flight)

    def _count_waiting(self, change: int) -> None:
        self.waiting += change
        self.metrics.queue_depth.set(self.waiting)
