"""A fake worker for agents' handlers: real profile, catalog and image code; the store,
database, Bedrock and topics are in-memory recorders (unit tests of the handlers'
logic; the real services are exercised by the integration and e2e tests)."""

from __future__ import annotations

import contextlib
import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np

from imaging.errors import ObjectMissing
from imaging.samples import render_product_scene
from profiles import load_profile
from services.model_catalog import load_catalog
from services.object_store import ObjectUri
from streams.app import Worker
from streams.handoff import PixelHandoff
from streams.identity import parse_catalogue_id
from streams.records import Event, ImageUploaded, deterministic_id
from streams.settings import Settings
from streams.topics import TOPIC_SPECS, key_of


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def get(self, uri: ObjectUri, *, keep: bool = False) -> bytes:
        try:
            return self.objects[str(uri)]
        except KeyError:
            raise ObjectMissing(f"{uri} does not exist") from None

    async def put(self, uri: ObjectUri, data: bytes, content_type: str, *,
                  keep: bool = False) -> None:
        self.objects[str(uri)] = data

    async def put_if_absent(self, uri: ObjectUri, data: bytes, content_type: str, *,
                            keep: bool = False) -> bool:
        if str(uri) in self.objects:
            return False
        self.objects[str(uri)] = data
        return True

    async def delete(self, uri: ObjectUri) -> None:
        self.objects.pop(str(uri), None)


class FakeDatabase:
    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple]] = []
        self.rows: list[dict] = []  # what fetchall answers
        self.one: dict | None = None  # what fetchone answers
        self.deleted: set[str] = set()  # image ids with a deletion tombstone

    async def fetchall(self, sql: str, args: Any = None) -> list[dict]:
        self.statements.append((sql, tuple(args or ())))
        return list(self.rows)

    async def fetchone(self, sql: str, args: Any = None) -> dict | None:
        self.statements.append((sql, tuple(args or ())))
        if "deleted_images" in sql:
            return {"gone": 1} if args and args[0] in self.deleted else None
        return self.one

    async def execute(self, sql: str, args: Any = None) -> int:
        self.statements.append((sql, tuple(args or ())))
        return 1

    @contextlib.asynccontextmanager
    async def transaction(self):
        yield _FakeConnection(self)


class _FakeConnection:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    @contextlib.asynccontextmanager
    async def cursor(self):
        yield self.db  # its execute records the statement


class FakeResources:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.db = FakeDatabase()
        self.bedrock: Any = None
        self.image_pool = ThreadPoolExecutor(max_workers=2)

    async def ready_with_retry(self) -> None:
        return None


class FakeWorker:
    """Duck-types :class:`streams.app.Worker` for handlers; ``sent`` records emissions."""

    profile_for = Worker.profile_for

    def __init__(self, tmp_path, **settings: Any) -> None:
        self.settings = Settings(home=tmp_path, _env_file=None, **settings)
        self.profile = load_profile("default")
        self.catalog = load_catalog()
        self.resources = FakeResources()
        self.state: dict[str, Any] = {}
        self.handoff = PixelHandoff(64 * 1024 * 1024)
        self.sent: list[tuple[str, str, Event]] = []

    @property
    def image_pool(self):
        return self.resources.image_pool

    async def send(self, topic: str, event: Event) -> None:
        self.sent.append((topic, key_of(TOPIC_SPECS[topic], event), event))

    def sent_to(self, topic: str) -> list[Event]:
        return [event for name, _, event in self.sent if name == topic]


def product_photo(background: str = "white", seed: int = 3, blurred: bool = False,
                  size: tuple[int, int] = (480, 360)) -> bytes:
    rgb = render_product_scene(np.random.default_rng(seed), product="mug",
                               background=background, width=size[0], height=size[1])
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if blurred:
        bgr = cv2.GaussianBlur(bgr, (0, 0), 3.0)
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def uploaded_photo(worker: FakeWorker, data: bytes, seller: str = "seller-1",
                   sku: str = "SKU-1") -> ImageUploaded:
    """Put ``data`` in the fake store and describe it as the upload stage would (seller
    and SKU as the catalogue has them: keys and labels as streams/identity.py makes them)."""
    seller_id, sku_id = parse_catalogue_id(seller), parse_catalogue_id(sku)
    sha = hashlib.sha256(data).hexdigest()
    shape = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape
    uri = ObjectUri(worker.settings.originals_bucket, f"originals/{sha[:2]}/{sha}.jpg")
    worker.resources.store.objects[str(uri)] = data
    image_id = deterministic_id("image", seller_id.key, sku_id.key, sha)
    return ImageUploaded.new(
        event_id=deterministic_id("ImageUploaded", image_id), image_id=image_id,
        seller_id=seller_id.key, sku_id=sku_id.key, seller_label=seller_id.carried_label,
        sku_label=sku_id.carried_label, product_group_id=None, filename="mug.jpg",
        original_uri=str(uri), content_sha256=sha, content_type="image/jpeg",
        format="jpeg", size_bytes=len(data), width=int(shape[1]), height=int(shape[0]),
        orientation=1)
