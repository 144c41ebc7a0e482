"""Running the face parser fast: device and precision choice, batched crops in, probabilities out.

CUDA: fp16 autocast (bf16 where the card supports it). CPU: fp32 and, where oneDNN has bf16,
bf16 autocast with channels_last are timed at warm-up and the faster one is used. bf16 is only
a candidate because its accuracy was checked: ``identix-stream bench --precision-check`` (and
tests/inference/test_parser_runtime.py) compare its mean F1 with fp32 on real validation images
and fail when it is more than 1 point lower. Everything here runs on the executor thread.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from identix_stream.errors import ConfigError, InvalidInput
from identix_stream.inference.bisenet import BiSeNet
from identix_stream.inference.model_file import ParserSpec, load_parser, outputs_to_ours

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16")
MAX_F1_LOSS = 0.01  # a reduced precision may lose at most 1 point of mean F1 against fp32


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; 'cuda' without a GPU is a configuration error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("IDENTIX_DEVICE=cuda but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"IDENTIX_DEVICE must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """Native bf16 matmul (AVX512-BF16 or AMX); without it oneDNN emulates bf16 ~7x slower than fp32
    (measured here on an AVX2-only host: 3.7 s vs 0.54 s per face under load), so it is not tried."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def candidate_precisions(device: torch.device) -> list[str]:
    if device.type == "cuda":
        return ["bf16" if torch.cuda.is_bf16_supported() else "fp16"]
    return ["fp32", "bf16"] if cpu_has_bf16() else ["fp32"]


@dataclass
class ParserRuntime:
    """A loaded parser on its device with one precision; ``parse`` maps BGR crops to probabilities."""

    model: BiSeNet
    spec: ParserSpec
    device: torch.device
    precision: str = "fp32"
    timings_ms: dict[str, float] = field(default_factory=dict)  # warm-up ms per face by precision

    @classmethod
    def load(cls, path: Path, device: str = "auto", precision: str = "auto") -> ParserRuntime:
        model, spec = load_parser(path)
        dev = resolve_device(device)
        if precision != "auto" and precision not in PRECISIONS:
            raise ConfigError(f"precision must be auto or one of {PRECISIONS}, got {precision!r}")
        model = model.to(dev)
        rt = cls(model, spec, dev, "fp32" if precision == "auto" else precision)
        rt._set_layout()
        return rt

    def _set_layout(self) -> None:
        fmt = torch.channels_last if self.precision != "fp32" or self.device.type == "cuda" else torch.contiguous_format
        self.model = self.model.to(memory_format=fmt)

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision == "fp32":
            yield
            return
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        with torch.autocast(self.device.type, dtype=dtype):
            yield

    def to_tensor(self, crops_bgr: Sequence[np.ndarray]) -> torch.Tensor:
        size = self.spec.input_size
        for c in crops_bgr:
            if c.shape != (size, size, 3) or c.dtype != np.uint8:
                raise InvalidInput(f"parser crops must be uint8 ({size}, {size}, 3), got {c.dtype} {c.shape}")
        batch = torch.from_numpy(np.stack(crops_bgr)[..., ::-1].copy()).to(self.device)  # RGB
        x = batch.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.spec.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.spec.std, device=self.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        if self.precision != "fp32" or self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.inference_mode()
    def parse(self, crops_bgr: Sequence[np.ndarray]) -> torch.Tensor:
        """Softmax probabilities over our 11 classes, (N, 11, S, S) float32 on the CPU."""
        if not crops_bgr:
            size = self.spec.input_size
            return torch.zeros(0, 11, size, size)
        x = self.to_tensor(crops_bgr)
        with self._autocast():
            out = self.model(x)
        logits = out[0] if isinstance(out, (tuple, list)) else out
        scores = outputs_to_ours(logits.float(), self.spec)
        return scores.softmax(1).to("cpu", torch.float32).contiguous()

    def time_precision(self, precision: str, batch: int = 1, iters: int = 3) -> float:
        """Median ms per face for one precision on random crops (used to pick the fastest)."""
        old = self.precision
        self.precision = precision
        self._set_layout()
        size = self.spec.input_size
        rng = np.random.default_rng(0)
        crops = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(batch)]
        try:
            self.parse(crops)  # first call builds oneDNN kernels
            times = []
            for _ in range(iters):
                t0 = time.perf_counter()
                self.parse(crops)
                times.append((time.perf_counter() - t0) * 1000 / batch)
        finally:
            self.precision = old
            self._set_layout()
        return float(np.median(times))

    def choose_precision(self, candidates: list[str] | None = None) -> str:
        """Time each candidate precision and keep the fastest (only accuracy-checked ones are candidates)."""
        cands = candidates or candidate_precisions(self.device)
        if len(cands) == 1:
            self.precision = cands[0]
            self._set_layout()
            self.parse([np.zeros((self.input_size,) * 2 + (3,), np.uint8)])
            return self.precision
        self.timings_ms = {p: round(self.time_precision(p), 2) for p in cands}
        self.precision = min(self.timings_ms, key=lambda p: self.timings_ms[p])
        self._set_layout()
        log.info("parser precision %s on %s (warm-up ms/face: %s)", self.precision, self.device, self.timings_ms)
        return self.precision
