"""How obstore's failures map onto the project's error classes."""

import asyncio

import botocore.exceptions
import obstore.exceptions
import pytest

from imaging.errors import ObjectMissing, PermanentError, ServiceUnavailable
from services.object_store import ObjectUri, _admin, _wrapped

URI = ObjectUri("b", "k.jpg")


@pytest.mark.parametrize(("exc", "expected"), [
    (obstore.exceptions.NotFoundError("not found"), ObjectMissing),
    (obstore.exceptions.PermissionDeniedError("403 Forbidden"), PermanentError),
    (obstore.exceptions.UnauthenticatedError("401"), PermanentError),
    (obstore.exceptions.GenericError(
        "Error performing PUT in 1ms - Server returned non-2xx status code: 400 Bad Request"),
     PermanentError),
    (obstore.exceptions.GenericError(
        "Error performing PUT - Server returned non-2xx status code: 409 Conflict"),
     ServiceUnavailable),
    (obstore.exceptions.GenericError(
        "Error performing GET - Server returned non-2xx status code: 503 Slow Down"),
     ServiceUnavailable),
    (obstore.exceptions.GenericError("HTTP error: error sending request"), ServiceUnavailable),
])
def test_error_classes(exc, expected):
    wrapped = _wrapped(exc, URI)
    assert type(wrapped) is expected
    assert "s3://b/k.jpg" in str(wrapped)


def test_only_the_first_line_of_a_message_is_kept():
    wrapped = _wrapped(obstore.exceptions.GenericError("boom\n<?xml ...>"), URI)
    assert "xml" not in str(wrapped)


@pytest.mark.parametrize(("exc", "expected"), [
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), ServiceUnavailable),
    (botocore.exceptions.HTTPClientError(error="('Connection aborted.', "
                                               "RemoteDisconnected())"), ServiceUnavailable),
    (botocore.exceptions.ClientError({"Error": {"Code": "NoSuchBucket", "Message": "m"}},
                                     "HeadBucket"), ObjectMissing),
    (botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "m"}},
                                     "CreateBucket"), PermanentError),
])
def test_bucket_call_error_classes(exc, expected):
    def fail():
        raise exc

    with pytest.raises(expected):
        asyncio.run(_admin(fail))
