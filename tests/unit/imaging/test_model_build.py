"""The int8 segmentation network built at install time (imaging.model_build)."""

import hashlib

import cv2
import numpy as np
import onnxruntime as ort

from imaging.model_build import calibration_inputs
from imaging.samples import render_product_scene_with_mask
from imaging.segmentation import (
    FLOAT_MODEL_SHA256,
    float_model_path,
    int8_model_path,
    model_input,
    model_mask,
)


def test_the_shipped_float_model_is_the_one_the_build_is_made_for():
    assert hashlib.sha256(float_model_path().read_bytes()).hexdigest() == FLOAT_MODEL_SHA256


def test_calibration_is_the_same_every_build():
    first, second = calibration_inputs(count=3), calibration_inputs(count=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert {x.shape[1] for x in first} == {3}


def test_model_input_keeps_the_photo_aspect_in_multiples_of_32():
    assert model_input(np.zeros((400, 300, 3), np.uint8), 256).shape == (1, 3, 256, 192)
    assert model_input(np.zeros((30, 600, 3), np.uint8), 256).shape == (1, 3, 64, 256)


def test_the_int8_network_masks_a_product_like_the_float_one():
    rgb, truth = render_product_scene_with_mask(
        np.random.default_rng(31), product="tshirt", background="grey", width=320, height=240)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    reference = ort.InferenceSession(str(float_model_path()), options,
                                     providers=["CPUExecutionProvider"])
    square = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (320, 320)).astype(np.float32)
    x = ((square / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).astype(np.float32)
    out = reference.run(None, {reference.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})
    saliency = out[0][0, 0]
    saliency = (saliency - saliency.min()) / (saliency.max() - saliency.min())
    float_mask = cv2.resize(saliency, (320, 240)) > 0.5
    int8_mask = model_mask(bgr, 256) > 0.5
    assert int8_model_path().is_file()
    iou = (float_mask & int8_mask).sum() / (float_mask | int8_mask).sum()
    truth_iou = (int8_mask & (truth > 0.5)).sum() / (int8_mask | (truth > 0.5)).sum()
    float_truth = (float_mask & (truth > 0.5)).sum() / (float_mask | (truth > 0.5)).sum()
    assert iou > 0.9 and truth_iou > 0.9, (iou, truth_iou, float_truth)


def _dequantize_then_shape():
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["f"]),
         helper.make_node("Shape", ["f"], ["size"]),
         helper.make_node("Relu", ["f"], ["out"])],
        "g",
        [helper.make_tensor_value_info("q", TensorProto.UINT8, ["h", "w"])],
        [helper.make_tensor_value_info("size", TensorProto.INT64, [2]),
         helper.make_tensor_value_info("out", TensorProto.FLOAT, ["h", "w"])],
        [helper.make_tensor("scale", TensorProto.FLOAT, [], [0.5]),
         helper.make_tensor("zero", TensorProto.UINT8, [], [3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_shapes_are_read_off_the_int8_tensors_with_the_same_outputs():
    from imaging.model_build import shapes_from_quantized

    original, rewired = _dequantize_then_shape(), _dequantize_then_shape()
    assert shapes_from_quantized(rewired) == 1
    assert rewired.graph.node[1].input[0] == "q"
    feed = {"q": np.arange(12, dtype=np.uint8).reshape(3, 4)}
    outputs = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
               .run(None, feed) for m in (original, rewired)]
    assert all(np.array_equal(a, b) for a, b in zip(*outputs, strict=True))


def test_the_built_network_has_no_shape_of_a_dequantized_copy():
    import onnx

    from imaging.model_build import shapes_from_quantized

    assert shapes_from_quantized(onnx.load(str(int8_model_path()))) == 0


def test_the_built_network_weights_leave_room_against_saturation():
    """Weights of 7 bits: on AVX2-only CPUs pairs of u8 x s8 products are summed in int16,
    and 8-bit weights overflow it, so masks would depend on the machine."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(int8_model_path()))
    initializers = {item.name: item for item in model.graph.initializer}
    weights = [numpy_helper.to_array(initializers[node.input[0]])
               for node in model.graph.node
               if node.op_type == "DequantizeLinear" and node.input[0] in initializers]
    weights = [w for w in weights if w.dtype == np.int8]
    assert len(weights) > 100
    assert all(int(np.abs(w.astype(np.int16)).max()) <= 64 for w in weights)
