"""MySQL writes of the assess stage: the `before` quality row and the image's status.

Both are idempotent: the row is keyed by (image, metric type, profile name, version) and
rewritten with the same values on redelivery; the status only moves forward.
"""

from __future__ import annotations

import json

from services.database import Database
from streams.records import QualityAssessed

_ADVANCE_TO_ANALYZED = ("uploaded", "analyzing", "failed")
_REWRITTEN = ("blur_score", "brightness", "contrast", "noise_level", "brisque_score",
              "background_complexity", "width", "height", "file_size_bytes", "overall_score",
              "quality_tier", "issues", "recommendations")
# VALUES(col): understood by MariaDB and MySQL 8 alike (MySQL's row alias is not).
_UPDATE_ALL = ", ".join(f"{c} = VALUES({c})" for c in _REWRITTEN)


async def save_assessment(db: Database, event: QualityAssessed) -> None:
    m = event.metrics
    async with db.transaction() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO quality_metrics (image_id, job_id, metric_type, profile_name,"
            " profile_version, blur_score, brightness, contrast, noise_level, brisque_score,"
            " background_complexity, width, height, file_size_bytes, overall_score,"
            " quality_tier, issues, recommendations)"
            " VALUES (%s, NULL, 'before', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s) ON DUPLICATE KEY UPDATE "
            + _UPDATE_ALL,
            (
                event.image_id, event.profile["name"], event.profile["version"],
                m["blur"], m["brightness"], m["contrast"], m["noise"], m["brisque"],
                m["background_complexity"], m["width"], m["height"], m["file_size_bytes"],
                event.overall_score, event.tier, json.dumps(event.issues),
                json.dumps(event.recommendations),
            ),
        )
        marks = ", ".join(["%s"] * len(_ADVANCE_TO_ANALYZED))
        await cur.execute(
            f"UPDATE product_images SET status = 'analyzed', last_error = NULL"
            f" WHERE image_id = %s AND status IN ({marks})",
            (event.image_id, *_ADVANCE_TO_ANALYZED),
        )
