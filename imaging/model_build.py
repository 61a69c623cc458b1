"""Build the int8 segmentation network the workers run, from the float one that ships.

Why at install time: an int8 copy of U²-Net-p gives the same masks at a third of the
float network's CPU (docs/decisions/0001-outcomes-a-seller-can-trust.md), but no
registry package ships it and weights cannot be downloaded at run time. The conversion
is deterministic (the same bytes every build): calibration uses scenes rendered by
:mod:`imaging.samples` with fixed seeds. It needs the ``onnx`` package, and ~1.5 GB of
memory for a few seconds.

Run ``python -m imaging.model_build`` (``scripts/setup`` and the Dockerfile do); it
writes :func:`imaging.segmentation.int8_model_path` and does nothing when that exists.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from imaging.samples import BACKGROUNDS, PRODUCTS, render_product_scene_with_mask
from imaging.segmentation import (
    FLOAT_MODEL_SHA256,
    MaskRules,
    float_model_path,
    int8_model_path,
    model_input,
)

# One 8-bit scale cannot hold Conv_765's near-constant channel next to the others, and
# the fused output's convolution cancels it with large biases: these stay in float.
_FLOAT_NODES = ["Conv_765", "Relu_766", "Resize_785", "Concat_786", "Conv_787"]
_CALIBRATION_SCENES = 30
_CALIBRATION_STRIDE = 5  # scenes per calibration pass (bounds the build's memory)


def calibration_inputs(count: int = _CALIBRATION_SCENES,
                       side: int = MaskRules.model_side) -> list[np.ndarray]:
    """Network inputs for rendered product scenes (fixed seeds: the same every build)."""
    inputs = []
    for index in range(count):
        rng = np.random.default_rng(1000 + index)
        product = PRODUCTS[index % len(PRODUCTS)]
        backdrop = BACKGROUNDS[(index // len(PRODUCTS)) % len(BACKGROUNDS)]
        width, height = (480, 360) if index % 2 else (360, 480)
        rgb, _ = render_product_scene_with_mask(rng, product=product, background=backdrop,
                                                width=width, height=height)
        inputs.append(model_input(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), side))
    return inputs


def build_int8_model(source: Path, target: Path) -> None:
    """Quantize ``source`` (the shipped float U²-Net-p) into ``target``."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != FLOAT_MODEL_SHA256:
        # The float nodes above are named for this exact file.
        raise RuntimeError(f"unexpected segmentation model {source} (sha256 {digest})")
    model = onnx.load_from_string(data)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for index, name in ((2, "height"), (3, "width")):
            dims[index].ClearField("dim_value")
            dims[index].dim_param = name
    model = version_converter.convert_version(model, 13)

    class Scenes(CalibrationDataReader):
        def __init__(self) -> None:
            self._all = calibration_inputs()
            self._name = model.graph.input[0].name
            self.set_range(0, len(self._all))

        def __len__(self) -> int:
            return len(self._all)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._pending = iter(self._all[start_index:end_index])

        def get_next(self):
            batch = next(self._pending, None)
            return None if batch is None else {self._name: batch}

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as work:
        opset13 = Path(work) / "opset13.onnx"
        prepared = Path(work) / "prepared.onnx"
        built = Path(work) / "int8.onnx"
        onnx.save(model, opset13)
        quant_pre_process(str(opset13), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(built), Scenes(),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            # 7-bit weights: on CPUs without VNNI (AVX2 only) the u8 x s8 products are
            # summed in pairs into int16 and saturate, so the same file gave other masks
            # there than on VNNI machines; with one bit less they cannot overflow.
            reduce_range=True,
            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=_FLOAT_NODES,
            extra_options={"CalibStridedMinMax": _CALIBRATION_STRIDE})
        quantized = onnx.load(str(built))
        shapes_from_quantized(quantized)
        onnx.save(quantized, str(built))
        os.replace(built, target)  # whole file or nothing: a worker may be reading


def shapes_from_quantized(model) -> int:
    """Read tensor shapes off the int8 tensors, not off float copies made only for that.

    U²-Net scales each decoder stage to the size of another tensor (``Shape`` of it);
    after quantization that tensor is int8 and the ``Shape`` reads a dequantized float
    copy: onnxruntime makes the copy (and transposes it out of its channels-last layout)
    on every run. The shape is the same either way, so the output is bit for bit the
    same (docs/decisions/0001, profile 2.5.0). Returns how many ``Shape`` nodes were rewired.
    """
    made_by = {output: node for node in model.graph.node for output in node.output}
    rewired = 0
    for node in model.graph.node:
        source = made_by.get(node.input[0]) if node.op_type == "Shape" else None
        if source is not None and source.op_type == "DequantizeLinear":
            node.input[0] = source.input[0]
            rewired += 1
    return rewired


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    target = int8_model_path()
    if target.is_file() and not args.force:
        print(f"model_build: {target} exists")
        return 0
    build_int8_model(float_model_path(), target)
    print(f"model_build: wrote {target} "
          f"(sha256 {hashlib.sha256(target.read_bytes()).hexdigest()[:16]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
