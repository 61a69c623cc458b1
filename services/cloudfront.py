"""CloudFront client (moto server in the embedded stack, CloudFront in production).

boto3 is synchronous; every call runs in a worker thread so the event loop never waits
on the network. Errors are wrapped into the project's classes at this boundary, so the
CDN sink decides by class alone: ``InvalidationsBusy`` (CloudFront's in-progress limit)
and ``ServiceUnavailable`` are retried, everything else is a ``PermanentError``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from imaging.errors import ConfigurationError, PermanentError, RetryableError, ServiceUnavailable
from services.botocore_errors import TRANSPORT_ERRORS
from streams.settings import Settings

# Only used against an endpoint override (moto checks no credentials); never for AWS.
_DUMMY_KEY_ID = "imgstream-local"
_DUMMY_SECRET = "imgstream-local-secret"

_BUSY_CODES = {"TooManyInvalidationsInProgress"}
_RETRYABLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
}


class InvalidationsBusy(RetryableError):
    """CloudFront refuses more invalidations until some in progress complete."""


class CloudFront:
    """Thin async facade over a boto3 CloudFront client with the project's error classes."""

    def __init__(self, settings: Settings) -> None:
        self._endpoint = settings.cloudfront_endpoint or None
        self._configured_id = settings.cloudfront_distribution_id
        self._enhanced_bucket = settings.enhanced_bucket
        self._comment = f"imgstream {settings.app_id}"
        self._client_obj: Any = None
        self._client_lock = threading.Lock()
        self._distribution_id: str | None = self._configured_id
        # Only the embedded stack's moto server gets a distribution made for it: in an AWS
        # account, a worker must never create (and pay for) one.
        self._may_create = settings.env == "embedded"

    # -- public API ---------------------------------------------------------------

    async def ensure_distribution(self) -> str:
        """The distribution to invalidate: the configured one, else ours (created once).

        The embedded moto server starts empty, so a worker finds the distribution whose
        Comment names its app id or creates it; the CallerReference is derived from the
        app id, so two workers racing to create it end up with the same one.
        """
        if self._distribution_id is None:
            if not self._may_create:
                raise ConfigurationError("IMGSTREAM_CLOUDFRONT_DISTRIBUTION_ID is not set: "
                                         "production workers never create distributions")
            self._distribution_id = await self._call(self._find_or_create_distribution)
        return self._distribution_id

    async def invalidate(self, paths: list[str], caller_reference: str) -> str:
        """Create an invalidation; returns its id.

        Reusing ``caller_reference`` with the same paths returns the existing invalidation
        on CloudFront (idempotent redelivery).
        """
        distribution_id = await self.ensure_distribution()
        response = await self._call(
            lambda: self._client().create_invalidation(
                DistributionId=distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": list(paths)},
                    "CallerReference": caller_reference,
                },
            )
        )
        return str(response["Invalidation"]["Id"])

    async def get_invalidation(self, invalidation_id: str) -> dict[str, Any]:
        """``{"Id", "Status", "CreateTime", "InvalidationBatch": {"Paths", "CallerReference"}}``."""
        distribution_id = await self.ensure_distribution()
        response = await self._call(
            lambda: self._client().get_invalidation(
                DistributionId=distribution_id, Id=invalidation_id
            )
        )
        return dict(response["Invalidation"])

    async def list_invalidations(self) -> list[dict[str, Any]]:
        """Summaries (Id, Status, CreateTime) of every invalidation of the distribution."""
        distribution_id = await self.ensure_distribution()

        def list_all() -> list[dict[str, Any]]:
            paginator = self._client().get_paginator("list_invalidations")
            items: list[dict[str, Any]] = []
            for page in paginator.paginate(DistributionId=distribution_id):
                items.extend(page.get("InvalidationList", {}).get("Items") or [])
            return items

        return await self._call(list_all)

    # -- internals ----------------------------------------------------------------

    def _client(self) -> Any:
        """Built lazily, in a worker thread: the credential chain may query IMDS."""
        with self._client_lock:
            if self._client_obj is None:
                credentials: dict[str, str] = {}
                if self._endpoint and boto3.Session().get_credentials() is None:
                    credentials = {"aws_access_key_id": _DUMMY_KEY_ID,
                                   "aws_secret_access_key": _DUMMY_SECRET}
                self._client_obj = boto3.client(
                    "cloudfront",
                    endpoint_url=self._endpoint,
                    region_name="us-east-1",
                    config=Config(connect_timeout=3, read_timeout=30,
                                  retries={"mode": "standard", "max_attempts": 3}),
                    **credentials,
                )
            return self._client_obj

    def _find_or_create_distribution(self) -> str:
        client = self._client()
        found = self._find_distribution(client)
        if found:
            return found
        origin_id = f"s3-{self._enhanced_bucket}"
        try:
            response = client.create_distribution(DistributionConfig={
                "CallerReference": f"imgstream-distribution-{self._comment}",
                "Comment": self._comment,
                "Enabled": True,
                "Origins": {"Quantity": 1, "Items": [{
                    "Id": origin_id,
                    "DomainName": f"{self._enhanced_bucket}.s3.amazonaws.com",
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                }]},
                "DefaultCacheBehavior": {
                    "TargetOriginId": origin_id,
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "MinTTL": 0,
                    "ForwardedValues": {"QueryString": False,
                                        "Cookies": {"Forward": "none"}},
                    "TrustedSigners": {"Enabled": False, "Quantity": 0},
                },
            })
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) != "DistributionAlreadyExists":
                raise
            found = self._find_distribution(client)  # another worker won the race
            if not found:
                raise
            return found
        return str(response["Distribution"]["Id"])

    def _find_distribution(self, client: Any) -> str | None:
        for page in client.get_paginator("list_distributions").paginate():
            for item in page.get("DistributionList", {}).get("Items") or []:
                if item.get("Comment") == self._comment:
                    return str(item["Id"])
        return None

    async def _call(self, fn, /, *args, **kwargs):
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except botocore.exceptions.ClientError as exc:
            code = _error_code(exc)
            message = exc.response.get("Error", {}).get("Message") or str(exc)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if code in _BUSY_CODES:
                raise InvalidationsBusy(f"cloudfront: {code}: {message}") from exc
            if code in _RETRYABLE_CODES or status >= 500 or status == 429:
                raise ServiceUnavailable(f"cloudfront: {code}: {message}") from exc
            # BatchTooLarge, InvalidArgument, InconsistentQuantities, NoSuchDistribution,
            # AccessDenied, InvalidationBatchAlreadyExists...: retrying cannot help.
            raise PermanentError(f"cloudfront: {code}: {message}") from exc
        except TRANSPORT_ERRORS as exc:
            raise ServiceUnavailable(f"cloudfront unreachable: {exc}") from exc


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
