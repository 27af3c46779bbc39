"""Authentication failures are not retried: the credentials will not get better by waiting
(issue 14, point 4). An unreachable endpoint still is."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from dsql_migrate.errors import ConnectError
from dsql_migrate.runner.retry import RetryPolicy, is_auth_failure
from dsql_migrate.runner.session import Session


def _refusing(error: BaseException, calls: list[int]) -> Any:
    def factory() -> psycopg.Connection[Any]:
        calls.append(1)
        raise error
    return factory


@pytest.mark.parametrize("error", [
    ConnectError("could not connect to h:5432: FATAL:  password authentication failed for "
                 'user "app"', hint="check the user name and the credentials"),
    ConnectError('could not connect to h:5432: FATAL:  role "nobody" does not exist'),
    ConnectError("could not connect to x.dsql.us-east-1.on.aws:5432: access denied"),
    psycopg.OperationalError('connection failed: FATAL:  password authentication failed for '
                             'user "app"'),
], ids=["password", "no-role", "iam", "psycopg"])
def test_authentication_failure_is_raised_at_once(error: BaseException) -> None:
    calls: list[int] = []
    session = Session(_refusing(error, calls), retry=RetryPolicy(attempts=5),
                      sleep=lambda s: None)
    with pytest.raises(type(error)):
        session.transaction("read", lambda c: None)
    assert calls == [1]
    assert is_auth_failure(error)


def test_an_unreachable_endpoint_is_still_retried() -> None:
    calls: list[int] = []
    error = ConnectError("could not connect to 127.0.0.1:1: connection refused")
    session = Session(_refusing(error, calls), retry=RetryPolicy(attempts=3),
                      sleep=lambda s: None)
    with pytest.raises(ConnectError):
        session.transaction("read", lambda c: None)
    assert calls == [1, 1, 1]
    assert not is_auth_failure(error)
