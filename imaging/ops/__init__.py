"""Local enhancement operations, one per module, looked up by name.

Why a registry: the enhance stage receives a plan (operation names plus params, from the
profile and the assessment) inside Kafka events; every name and param is checked here, and
anything wrong is a :class:`~imaging.errors.PermanentError` (the event is dead-lettered, a
retry could never succeed). Every operation is pure and deterministic: a BGR uint8 image in,
a new BGR uint8 image out, no I/O, the input never modified.

The operation functions can also be called directly with keyword arguments; they raise
``ValueError`` for out-of-range values, which :func:`apply_operation` turns into
``PermanentError``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from imaging.errors import PermanentError
from imaging.ops.background import background
from imaging.ops.brightness import brightness
from imaging.ops.clahe import contrast
from imaging.ops.deblur import deblur
from imaging.ops.denoise import denoise
from imaging.ops.unsharp import sharpen
from imaging.ops.upscale import upscale

Operation = Callable[[np.ndarray, Mapping[str, Any], np.ndarray | None], np.ndarray]

_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "sharpen": sharpen,
    "denoise": denoise,
    "contrast": contrast,
    "brightness": brightness,
    "background": background,
    "upscale": upscale,
    "deblur": deblur,
}


def _checked_params(name: str, fn: Callable[..., np.ndarray], params: Mapping[str, Any]
                    ) -> dict[str, Any]:
    """Reject unknown names and values whose type does not match the default's type.

    Integral floats (``8.0`` from JSON) are accepted for int params; ints for float params.
    Params whose default is a sequence or None are checked by the operation itself.
    """
    if not isinstance(params, Mapping):
        raise PermanentError(f"params of {name!r} must be a mapping, got {type(params).__name__}")
    accepted = {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise PermanentError(
            f"unknown params for operation {name!r}: {unknown}; accepted: {sorted(accepted)}"
        )
    checked: dict[str, Any] = {}
    for key, value in params.items():
        default = accepted[key]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if isinstance(default, bool) or default is None or isinstance(default, tuple | list):
            checked[key] = value
        elif isinstance(default, int):
            if not number or not float(value).is_integer():
                raise PermanentError(f"param {key!r} of {name!r} must be an integer, got {value!r}")
            checked[key] = int(value)
        elif isinstance(default, float):
            if not number or not math.isfinite(value):
                raise PermanentError(f"param {key!r} of {name!r} must be a number, got {value!r}")
            checked[key] = float(value)
        else:
            checked[key] = value
    return checked


def _registered(name: str) -> Operation:
    fn = _FUNCTIONS[name]

    takes_source = "source" in inspect.signature(fn).parameters

    def run(bgr: np.ndarray, params: Mapping[str, Any], source: np.ndarray | None = None
            ) -> np.ndarray:
        checked = _checked_params(name, fn, params)
        try:
            if takes_source:
                return fn(bgr, source, **checked)
            return fn(bgr, **checked)
        except ValueError as exc:
            raise PermanentError(f"invalid params for operation {name!r}: {exc}") from exc

    run.__name__ = f"{name}_operation"
    run.__doc__ = fn.__doc__
    return run


OPERATIONS: dict[str, Operation] = {name: _registered(name) for name in _FUNCTIONS}


def apply_operation(name: str, bgr: np.ndarray, params: Mapping[str, Any] | None = None,
                    source: np.ndarray | None = None) -> np.ndarray:
    """Run operation ``name`` on a BGR uint8 image; PermanentError says what is wrong.

    ``source`` is the photo before any step (same geometry as ``bgr`` until an upscale):
    operations that find the product (background) segment it rather than ``bgr``, so a
    photo is segmented once however many stages ask.
    """
    operation = OPERATIONS.get(name)
    if operation is None:
        raise PermanentError(f"unknown operation {name!r}; known: {sorted(OPERATIONS)}")
    if not (
        isinstance(bgr, np.ndarray)
        and bgr.dtype == np.uint8
        and bgr.ndim == 3
        and bgr.shape[2] == 3
        and bgr.shape[0] > 0
        and bgr.shape[1] > 0
    ):
        shape = getattr(bgr, "shape", None)
        dtype = getattr(bgr, "dtype", type(bgr).__name__)
        raise PermanentError(
            f"operation {name!r} needs a BGR uint8 image, got shape {shape} dtype {dtype}"
        )
    return operation(bgr, {} if params is None else params, source)


__all__ = [
    "OPERATIONS",
    "Operation",
    "apply_operation",
    "background",
    "brightness",
    "contrast",
    "deblur",
    "denoise",
    "sharpen",
    "upscale",
]
