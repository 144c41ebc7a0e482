"""Make the int8 CPU fast path of a parser model: <model>.int8.onnx next to <model>.pt.

Static QDQ quantization with ONNX Runtime (per-channel 7-bit-range int8 weights, uint8 activations)
of the convolutions only, calibrated on real face crops (CelebAMask-mini *train* split, cut with the
training geometry). Measured on the 104 held-out CelebAMask crops (mean F1, fp32 0.8154):

- full-range int8 weights: 0.8018. On AVX2 CPUs without VNNI the u8 x s8 kernels can saturate
  their 16-bit pair sums; ``reduce_range`` (7-bit weights) avoids it: 0.8150.
- quantizing the logits (the default QDQ also puts Q/DQ on the final Resize output) cost the same
  ~1.4 points on its own; the 1x1 classifier stays fp32 so the logits are never rounded.
- MinMax, Entropy and Percentile calibration gave the same F1 once those two were fixed. The file
records the SHA-256 of the .pt it came from; the service only uses it for that exact model, and
only after ``identix-stream bench --precision-check`` shows its mean F1 within 1 point of fp32.

Usage: python tools/quantize_parser.py models/face_parser.pt [--data ../shared/data] [--calib 96]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

from identix_stream.commands.bench import precision_check
from identix_stream.core.geometry import crop_window
from identix_stream.inference.parser_runtime import INT8_SHA_KEY, ParserRuntime, int8_path
from identix_stream.pipeline.paste import crop_face
from identix_stream.training.data import load_celebamask


class Crops(CalibrationDataReader):
    def __init__(self, rt: ParserRuntime, data: Path, n: int) -> None:
        samples = load_celebamask(data / "face_parsing" / "celebamask_mini", "train")
        random.Random(0).shuffle(samples)
        spec = rt.spec
        self.items = []
        for s in samples[:n]:
            crop, _ = crop_face(s.image, crop_window(s.face_box, spec.crop_scale, spec.crop_shift_y), rt.input_size)
            self.items.append({"x": rt.to_tensor([crop]).numpy()})
        self.it = iter(self.items)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.it, None)

    def rewind(self) -> None:
        self.it = iter(self.items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--calib", type=int, default=96, help="calibration crops")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--keep-fp32", default="/conv_out/conv_out/Conv", help="node names left in fp32 (comma-separated)")
    ap.add_argument("--check-images", type=int, default=60, help="validation images for the F1 check")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rt = ParserRuntime.load(args.model, "cpu", "fp32")
    out = int8_path(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        torch.onnx.export(
            rt.model, torch.zeros(1, 3, rt.input_size, rt.input_size), str(fp32),  # type: ignore[arg-type]
            input_names=["x"], output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
            opset_version=17, dynamo=False,
        )
        names = {n.name for n in onnx.load(str(fp32)).graph.node}
        keep_fp32 = [name for name in args.keep_fp32.split(",") if name]
        missing = [name for name in keep_fp32 if name not in names]
        if missing:
            raise SystemExit(f"--keep-fp32 names not in the exported graph: {missing}")
        quantize_static(
            str(fp32), str(out), Crops(rt, args.data, args.calib), nodes_to_exclude=keep_fp32,
            op_types_to_quantize=["Conv"], reduce_range=True,
            quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.MinMax,
        )
    model = onnx.load(str(out))
    entry = model.metadata_props.add()
    entry.key, entry.value = INT8_SHA_KEY, hashlib.sha256(args.model.read_bytes()).hexdigest()
    onnx.save(model, str(out))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); checking mean F1 against fp32 ...")
    check = precision_check(args.model, args.data, "cpu", args.threads, args.check_images)
    print(json.dumps(check))
    if "ort-int8" not in check["accepted"]:
        out.unlink()
        raise SystemExit(f"int8 loses more than 1 point of mean F1: removed {out}")


if __name__ == "__main__":
    main()
