"""assess_quality: bytes in, quality report out. The whole assess stage minus Kafka."""

from __future__ import annotations

import time
from dataclasses import dataclass

from imaging.decoding import decode_image
from imaging.metrics import QualityMetrics, measure
from imaging.profile import Profile
from imaging.scoring import Judgement, judge


@dataclass(frozen=True)
class QualityReport:
    metrics: QualityMetrics
    judgement: Judgement
    subject: dict
    working_scale: float
    elapsed_ms: float

    def event_metrics(self) -> dict:
        """The metrics as events carry them (4 decimals): what route plans from."""
        return {k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in self.metrics.as_dict().items()}


def assess_quality(data: bytes, profile: Profile) -> QualityReport:
    """Decode at the profile's working resolution, measure, and judge one photo."""
    started = time.perf_counter()
    decoded = decode_image(data, profile.assessment.working_max_side)
    metrics, subject = measure(decoded.bgr, profile, original_width=decoded.original_width,
                               original_height=decoded.original_height,
                               file_size_bytes=len(data))
    judgement = judge(metrics, profile)
    to_original = 1.0 / decoded.scale
    subject_info = {
        "method": subject.method,
        "box": [round(v * to_original) for v in subject.box],  # original pixels
        "fraction": round(metrics.subject_fraction, 4),
    }
    return QualityReport(metrics, judgement, subject_info, decoded.scale,
                         (time.perf_counter() - started) * 1000.0)
