"""How asyncmy's failures map onto the project's error classes (services.database)."""

import asyncio

import pytest
from asyncmy.errors import IntegrityError, InterfaceError, OperationalError, ProgrammingError

from imaging.errors import PermanentError, ServiceUnavailable
from services.database import _wrapped


async def _raise_inside(exc: BaseException) -> None:
    async with _wrapped("query"):
        raise exc


@pytest.mark.parametrize(("exc", "expected"), [
    (OperationalError(2003, "Can't connect to MySQL server"), ServiceUnavailable),
    (OperationalError(2013, "Lost connection to MySQL server during query"),
     ServiceUnavailable),
    (OperationalError(1213, "Deadlock found"), ServiceUnavailable),
    # A pooled connection an outage dropped: seen dead-lettering a photo mid-outage.
    (InterfaceError(0, "Not connected"), ServiceUnavailable),
    (InterfaceError(0, ""), ServiceUnavailable),
    (ConnectionResetError(104, "reset"), ServiceUnavailable),
    (TimeoutError(), ServiceUnavailable),
    (OperationalError(1045, "Access denied"), PermanentError),
    (ProgrammingError(1064, "You have an error in your SQL syntax"), PermanentError),
    (IntegrityError(1062, "Duplicate entry"), PermanentError),
])
def test_error_classes(exc, expected):
    with pytest.raises(expected) as raised:
        asyncio.run(_raise_inside(exc))
    assert type(raised.value) is expected
    assert str(raised.value).startswith("database query: ")
