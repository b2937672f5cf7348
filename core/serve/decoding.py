"""Decoding a request's images in the pool of decoding threads, within two pixel budgets.

A small upload can decode to gigabytes (a 200 KB PNG of 9400x9400 pixels) and hold a decoding
thread for seconds, so the pixels are counted from the images' headers before anything is
decoded: one request's images may have at most ``max_request_pixels`` (else 413), and all the
images being decoded or waiting for a thread at most ``max_decoding_pixels`` (else 503 with
``Retry-After``). An image's pixels count until its decoding ends, or until it is dropped
before it started (its client hung up).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from PIL import Image

from zoo.base.errors import ImageError
from zoo.model.input_config import InputConfig
from zoo.runtime.images import decode_to_size, open_lazily
from zoo.runtime.pipeline import default_workers
from zoo.serve.errors import InvalidImage, Overloaded, PayloadTooLarge
from zoo.serve.inputs import EncodedImage
from zoo.serve.metrics import ServeMetrics
from zoo.serve.settings import ServeSettings


class Decoder:
    """The decoding threads, and the pixels given to them."""

    def __init__(self, settings: ServeSettings, metrics: ServeMetrics):
        self.settings = settings
        self.metrics = metrics
        self.decoding = 0
        """Pixels of the images being decoded or waiting for a thread."""
        self._lock = threading.Lock()  # decoding ends, and gives its pixels back, in a thread
        self._threads = ThreadPoolExecutor(
            settings.decode_threads or default_workers(), thread_name_prefix="zoo-decode"
        )

    async def decode(self, images: list[EncodedImage], config: InputConfig) -> list[np.ndarray]:
        """The images as ``config``'s model takes them; ``PayloadTooLarge`` or ``Overloaded`` before
        any is decoded when they have too many pixels, ``InvalidImage`` for one that is not
        a readable image."""
        opened = await asyncio.to_thread(_open_all, images)
        pixels = [image.width * image.height for image in opened]
        self._reserve(sum(pixels))
        return await asyncio.gather(
            *(
                asyncio.wrap_future(self._submit(image, lazy, count, config))
                for image, lazy, count in zip(images, opened, pixels, strict=True)
            )
        )

    def shutdown(self) -> None:
        self._threads.shutdown()

    def _reserve(self, pixels: int) -> None:
        settings = self.settings
        if pixels > settings.max_request_pixels:
            raise PayloadTooLarge(
                f"the request's images have {pixels:,} pixels; at most "
                f"{settings.max_request_pixels:,} (--max-request-megapixels)"
            )
        with self._lock:
            if self.decoding + pixels > settings.max_decoding_pixels:
                raise Overloaded(
                    f"{self.decoding:,} pixels are being decoded already; this request's "
                    f"{pixels:,} would pass {settings.max_decoding_pixels:,} "
                    "(--max-decoding-megapixels); retry shortly",
                    {"Retry-After": str(settings.retry_after_s)},
                )
            self._count(pixels)

    def _submit(
        self,
        image: EncodedImage,
        lazy: Image.Image,
        pixels: int,
        config: InputConfig,
    ) -> Future:
        future = self._threads.submit(_decode, image, lazy, config)
        future.add_done_callback(lambda _: self._give_back(pixels))  # decoded, failed or dropped
        return future

    def _give_back(self, pixels: int) -> None:
        with self._lock:
            self._count(-pixels)

    def _count(self, change: int) -> None:
        self.decoding += change
        self.metrics.decoding_pixels.set(self.decoding)


def _open_all(images: list[EncodedImage]) -> list[Image.Image]:
    """Each image's header, read (which Pillow does without decoding the pixels)."""
    try:
        return [open_lazily(image.data, image.name) for image in images]
    except ImageError as error:
        raise InvalidImage(str(error)) from None


def _decode(image: EncodedImage, lazy: Image.Image, config: InputConfig) -> np.ndarray:
    try:
        return decode_to_size(lazy, image.name, config)
    except ImageError as error:
        raise InvalidImage(str(error)) from None
