"""Remove everything a namespace (topic prefix, app id, database, buckets) created.

Tests and benchmarks run in namespaces of their own on the shared embedded stack; this
drops their database, empties and deletes their buckets and deletes their topics.
"""

from __future__ import annotations

import boto3
from confluent_kafka.admin import AdminClient

from services.database import Database
from streams.settings import Settings


async def drop_namespace(settings: Settings) -> list[str]:
    """Best effort; returns the problems met (cleanup must not hide results)."""
    problems: list[str] = []
    try:
        db = await Database.connect(settings)
        await db.execute(f"DROP DATABASE IF EXISTS `{settings.db_name}`")
        await db.close()
    except Exception as exc:
        problems.append(f"database: {exc}")
    s3 = boto3.resource("s3", endpoint_url=settings.s3_endpoint,
                        aws_access_key_id=settings.s3_access_key,
                        aws_secret_access_key=settings.s3_secret_key,
                        region_name=settings.s3_region)
    for name in (settings.originals_bucket, settings.enhanced_bucket, settings.ai_cache_bucket):
        try:
            bucket = s3.Bucket(name)
            bucket.objects.all().delete()
            bucket.delete()
        except s3.meta.client.exceptions.NoSuchBucket:
            pass
        except Exception as exc:
            problems.append(f"bucket {name}: {exc}")
    try:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        names = [t for t in admin.list_topics(timeout=5).topics
                 if (settings.topic_prefix and t.startswith(settings.topic_prefix))
                 or t.startswith(settings.app_id + "-")]
        if names:
            for future in admin.delete_topics(names, operation_timeout=10).values():
                future.result(timeout=15)
    except Exception as exc:
        problems.append(f"topics: {exc}")
    return problems


_NAMESPACED = ("topic_prefix", "app_id", "db_name", "originals_bucket", "enhanced_bucket",
               "ai_cache_bucket")


def namespace_env(kind: str, run: str) -> dict[str, str]:
    """Environment for processes of a namespace (topic prefix, group, database, buckets)."""
    return {
        "IMGSTREAM_TOPIC_PREFIX": f"{kind}-{run}.",
        "IMGSTREAM_APP_ID": f"imgstream-{kind}-{run}",
        "IMGSTREAM_DB_NAME": f"imgstream_{kind}_{run}",
        "IMGSTREAM_ORIGINALS_BUCKET": f"imgstream-{kind}-{run}-originals",
        "IMGSTREAM_ENHANCED_BUCKET": f"imgstream-{kind}-{run}-enhanced",
        "IMGSTREAM_AI_CACHE_BUCKET": f"imgstream-{kind}-{run}-ai-cache",
    }


def namespaced(settings: Settings, env: dict[str, str]) -> Settings:
    """``settings`` with the namespace fields of ``env`` applied (for this process)."""
    update = {name: env[f"IMGSTREAM_{name.upper()}"] for name in _NAMESPACED
              if f"IMGSTREAM_{name.upper()}" in env}
    return settings.model_copy(update=update)
