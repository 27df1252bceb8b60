"""tests/resources.py: each suite's Redis databases follow its settings and never overlap another's."""

import pytest

from tests.resources import REDIS_ROLES, redis_url


def test_two_offsets_give_two_disjoint_sets_of_redis_databases():
    first = {redis_url(role, {"TEST_REDIS_DB_OFFSET": "0"}) for role in REDIS_ROLES}
    second = {redis_url(role, {"TEST_REDIS_DB_OFFSET": "8"}) for role in REDIS_ROLES}
    assert len(first) == len(second) == len(REDIS_ROLES)  # one database per role
    assert not first & second
    assert redis_url("cache", {}) == "redis://127.0.0.1:6379/1"
    assert redis_url(
        "scale",
        {"TEST_REDIS_URL_BASE": "redis://redis.internal:6380/", "TEST_REDIS_DB_OFFSET": "8"},
    ) == ("redis://redis.internal:6380/11")


def test_an_offset_that_runs_past_the_last_redis_database_is_refused():
    assert redis_url("process_health", {"TEST_REDIS_DB_OFFSET": "8"}).endswith("/15")
    with pytest.raises(ValueError, match="TEST_REDIS_DB_OFFSET=9"):
        redis_url("process_health", {"TEST_REDIS_DB_OFFSET": "9"})
