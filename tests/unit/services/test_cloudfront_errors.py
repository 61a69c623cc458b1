"""How botocore's failures map onto the project's error classes (services.cloudfront)."""

import asyncio

import botocore.exceptions
import pytest

from imaging.errors import PermanentError, ServiceUnavailable
from services.cloudfront import CloudFront, InvalidationsBusy
from streams.settings import Settings


def _client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"},
         "ResponseMetadata": {"HTTPStatusCode": status}}, "CreateInvalidation")


@pytest.mark.parametrize(("exc", "expected"), [
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), ServiceUnavailable),
    (botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x"), ServiceUnavailable),
    (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), ServiceUnavailable),
    (botocore.exceptions.ConnectionClosedError(endpoint_url="http://x"), ServiceUnavailable),
    # What botocore raises for a connection the server aborted mid-answer.
    (botocore.exceptions.HTTPClientError(error="('Connection aborted.', "
                                               "RemoteDisconnected())"), ServiceUnavailable),
    (botocore.exceptions.ProxyConnectionError(proxy_url="http://p", error="refused"),
     ServiceUnavailable),
    (_client_error("TooManyInvalidationsInProgress", 400), InvalidationsBusy),
    (_client_error("Throttling", 400), ServiceUnavailable),
    (_client_error("InternalError", 500), ServiceUnavailable),
    (_client_error("NoSuchDistribution", 404), PermanentError),
    (_client_error("AccessDenied", 403), PermanentError),
])
def test_error_classes(exc, expected):
    def fail():
        raise exc

    with pytest.raises(expected) as raised:
        asyncio.run(CloudFront(Settings())._call(fail))
    assert type(raised.value) is expected
