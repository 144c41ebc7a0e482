"""Parse whole images into frame-sized label maps, synchronously, for offline tools (eval-parsing).

``detect`` runs the service's own path (an Analyzer "image" session: detect -> crop -> parse ->
paste back); ``whole`` treats the whole image as one face crop (aligned face datasets).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from identix_stream.config import DEFAULT_MODEL_PATH
from identix_stream.errors import InvalidInput

Predictor = Callable[[np.ndarray], np.ndarray]


@contextlib.contextmanager
def image_parser(
    model_path: Path | None = None, crop: Literal["detect", "whole"] = "detect", threads: int = 2,
    precision: str = "fp32",
) -> Iterator[Predictor]:
    """A BGR image -> (H, W) uint8 label map function, valid inside the ``with`` block.

    fp32 is the reference; another precision measures that fast path (e.g. ``ort-int8``)."""
    path = Path(model_path or os.environ.get("IDENTIX_MODEL_PATH") or DEFAULT_MODEL_PATH)
    with contextlib.ExitStack() as stack:
        if crop == "whole":
            yield _whole_image_predictor(path, threads, precision)
        elif crop == "detect":
            yield _detect_predictor(path, threads, stack, precision)
        else:
            raise InvalidInput(f"crop must be 'detect' or 'whole', got {crop!r}")


def _whole_image_predictor(path: Path, threads: int, precision: str) -> Predictor:
    from identix_stream.inference.parser_runtime import ParserRuntime

    torch.set_num_threads(threads)
    runtime = ParserRuntime.load(path, "auto", precision)
    size = runtime.input_size

    def predict(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        crop = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR)
        probs = runtime.parse([crop])
        full = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)
        return full[0].max(0).indices.to(torch.uint8).numpy()

    return predict


def _detect_predictor(path: Path, threads: int, stack: contextlib.ExitStack, precision: str) -> Predictor:
    from identix_stream.pipeline.analyzer import Analyzer

    runner = asyncio.Runner()
    analyzer = Analyzer(path, precision=precision, torch_threads=threads, max_batch=8)
    runner.run(analyzer.start())
    stack.callback(runner.close)
    stack.callback(lambda: runner.run(analyzer.stop()))

    async def one(image: np.ndarray) -> np.ndarray:
        session = analyzer.open_session("image")
        try:
            result = await session.analyze(image, 0)
        finally:
            session.close()
        return result.label_map

    def predict(image: np.ndarray) -> np.ndarray:
        return runner.run(one(image))

    return predict
