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
    for name in (settings.originals_bucket, settings.enhanced_bucket):
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
