"""Running the face parser fast: device and precision choice, batched crops in, probabilities out.

CUDA: fp16 autocast (bf16 where the card supports it). CPU: the candidates are timed at warm-up
and the fastest is used: torch fp32; ``ort-fp32``, the same fp32 graph exported once to ONNX
(in memory) and run by ONNX Runtime (measured here: 1.7-2.2x faster than torch eager at batch
1-8 on one thread, max |logit difference| 4e-6); and bf16 autocast + channels_last where the CPU
has native bf16. A reduced precision is only a candidate because its accuracy is checked:
``identix-stream bench --precision-check`` (and tests/inference/test_parser_runtime.py) compare
its mean F1 with fp32 on real validation images and fail when it is more than 1 point lower.
Everything here runs on the executor thread.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from identix_stream.config import PRECISIONS
from identix_stream.errors import ConfigError, InvalidInput
from identix_stream.inference.bisenet import BiSeNet
from identix_stream.inference.model_file import ParserSpec, load_parser, outputs_to_ours

log = logging.getLogger(__name__)

INT8_SHA_KEY = "identix_source_sha256"  # metadata of <model>.int8.onnx: the .pt it was quantized from


def int8_path(model_path: Path) -> Path:
    return model_path.with_suffix(".int8.onnx")


def _ort_options(threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # the CPU is shared
    return opts


def load_int8_session(model_path: Path, threads: int) -> Any | None:
    """The int8 ONNX made by tools/quantize_parser.py for exactly this model file, else None.

    The tool only keeps a file whose mean F1 is within 1 point of fp32 on validation images."""
    path = int8_path(model_path)
    if not path.is_file() or not has_onnxruntime():
        return None
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), _ort_options(threads), providers=["CPUExecutionProvider"])
    want = sess.get_modelmeta().custom_metadata_map.get(INT8_SHA_KEY)
    have = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if want != have:
        log.warning("ignoring %s: it was quantized from another model file", path)
        return None
    return sess
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


@functools.cache
def cpu_info() -> tuple[str, frozenset[str]]:
    """(CPU model name, ISA flags) from /proc/cpuinfo; ("unknown", {}) where there is none."""
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="ignore").splitlines()
    except OSError:
        return "unknown", frozenset()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "unknown")
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    return model, frozenset(flags)


def cpu_has_bf16() -> bool:
    """Native bf16 matmul (AVX512-BF16 or AMX); without it oneDNN emulates bf16 ~7x slower than fp32
    (measured here on an AVX2-only host: 3.7 s vs 0.54 s per face under load), so it is not tried."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_info()[1])


def has_onnxruntime() -> bool:
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def candidate_precisions(device: torch.device, model_path: Path | None = None) -> list[str]:
    if device.type == "cuda":
        return ["bf16" if torch.cuda.is_bf16_supported() else "fp16"]
    out = ["fp32"]
    if has_onnxruntime():
        out.append("ort-fp32")
        if model_path is not None and int8_path(model_path).is_file():
            out.append("ort-int8")
    if cpu_has_bf16():
        out.append("bf16")
    return out


def export_onnx_session(model: BiSeNet, size: int, threads: int) -> Any:
    """The model as an ONNX Runtime session (dynamic batch), exported in memory: no files."""
    import onnxruntime as ort

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the TorchScript exporter takes a bare tensor and a BytesIO (the stubs say tuple and path)
        torch.onnx.export(
            model.cpu().to(memory_format=torch.contiguous_format),
            torch.zeros(1, 3, size, size),  # type: ignore[arg-type]
            buf,  # type: ignore[arg-type]
            input_names=["x"], output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
            opset_version=17, dynamo=False,
        )
    return ort.InferenceSession(buf.getvalue(), _ort_options(threads), providers=["CPUExecutionProvider"])


@dataclass
class ParserRuntime:
    """A loaded parser on its device with one precision; ``parse`` maps BGR crops to probabilities."""

    model: BiSeNet
    spec: ParserSpec
    device: torch.device
    precision: str = "fp32"
    timings_ms: dict[str, float] = field(default_factory=dict)  # warm-up ms per face by precision
    threads: int = 1
    source: Path | None = None
    _ort: dict[str, Any] = field(default_factory=dict)  # ONNX Runtime sessions by precision, made on first use

    @classmethod
    def load(cls, path: Path, device: str = "auto", precision: str = "auto") -> ParserRuntime:
        model, spec = load_parser(path)
        dev = resolve_device(device)
        if precision != "auto" and precision not in PRECISIONS:
            raise ConfigError(f"precision must be auto or one of {PRECISIONS}, got {precision!r}")
        model = model.to(dev)
        if precision.startswith("ort-") and (dev.type != "cpu" or not has_onnxruntime()):
            raise ConfigError(f"precision {precision} needs the CPU and the onnxruntime + onnx packages")
        rt = cls(model, spec, dev, "fp32" if precision == "auto" else precision,
                 threads=torch.get_num_threads(), source=path)
        rt._set_layout()
        return rt

    def _set_layout(self) -> None:
        if self.precision == "ort-fp32" and "ort-fp32" not in self._ort:
            self._ort["ort-fp32"] = export_onnx_session(self.model, self.spec.input_size, self.threads)
        if self.precision == "ort-int8" and "ort-int8" not in self._ort:
            sess = load_int8_session(self.source, self.threads) if self.source is not None else None
            if sess is None:
                raise ConfigError(f"precision ort-int8 needs a matching {int8_path(self.source or Path('model.pt'))}")
            self._ort["ort-int8"] = sess
        if self.precision.startswith("ort-"):
            return
        channels_last = self.precision in ("bf16", "fp16") or self.device.type == "cuda"
        self.model = self.model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision in ("fp32", "ort-fp32", "ort-int8"):
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
        if self.precision in ("bf16", "fp16") or self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.inference_mode()
    def parse(self, crops_bgr: Sequence[np.ndarray]) -> torch.Tensor:
        """Softmax probabilities over our 11 classes, (N, 11, S, S) float32 on the CPU."""
        if not crops_bgr:
            size = self.spec.input_size
            return torch.zeros(0, 11, size, size)
        x = self.to_tensor(crops_bgr)
        if self.precision.startswith("ort-"):
            logits = torch.from_numpy(self._ort[self.precision].run(None, {"x": x.numpy()})[0])
        else:
            with self._autocast():
                out = self.model(x)
            logits = out[0] if isinstance(out, (tuple, list)) else out
        scores = outputs_to_ours(logits.float(), self.spec)
        return scores.softmax(1).to("cpu", torch.float32).contiguous()

    def labels(self, crops_bgr: Sequence[np.ndarray], batch: int = 8) -> list[np.ndarray]:
        """Label maps (uint8, S x S) of the crops, parsed ``batch`` at a time (offline tools and training)."""
        out: list[np.ndarray] = []
        for k in range(0, len(crops_bgr), batch):
            out += list(self.parse(crops_bgr[k:k + batch]).argmax(1).numpy().astype(np.uint8))
        return out

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
        cands = candidates or candidate_precisions(self.device, self.source)
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
