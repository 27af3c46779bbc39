from __future__ import annotations

import pytest

from dsql_migrate.errors import ConfigError
from dsql_migrate.profiles import CLASSIC, CURRENT, PROFILES, Capability, get_profile


def test_profiles_by_name() -> None:
    assert get_profile("classic") is CLASSIC
    assert get_profile("current") is CURRENT
    assert set(PROFILES) == {"classic", "current"}


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        get_profile("2027")
    assert "classic" in str(info.value) and "current" in str(info.value)


@pytest.mark.parametrize("capability", list(Capability))
def test_current_relaxes_what_classic_rejects(capability: Capability) -> None:
    # DSQL.md §1: every profile-dependent form is rejected by classic, accepted by current
    assert CURRENT.allows(capability)
    assert not CLASSIC.allows(capability)


def test_limits_match_dsql_md() -> None:
    limits = CURRENT.limits
    assert limits.rows_per_transaction == 3000
    assert limits.bytes_per_transaction == 10 * 1024 * 1024
    assert limits.transaction_seconds == 300
    assert limits.connection_seconds == 3600
    assert limits.indexes_per_table == 24
    assert limits.key_columns_per_index == 8
    assert limits.columns_per_table == 255
    assert limits.identifier_bytes == 63
    assert limits.min_large_cache == 65536


def test_with_limits_leaves_the_original_alone() -> None:
    smaller = CURRENT.with_limits({"rows_per_transaction": 100})
    assert smaller.limits.rows_per_transaction == 100
    assert CURRENT.limits.rows_per_transaction == 3000
    assert smaller.capabilities == CURRENT.capabilities
