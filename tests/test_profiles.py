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


# --- the shared table of statement forms (dsql_migrate.forms) -----------------------------------


def test_each_profile_rejects_a_column_of_the_one_table() -> None:
    from dsql_migrate.forms import FORM_RULES, rejected_forms

    classic, current = set(rejected_forms(CLASSIC)), set(rejected_forms(CURRENT))
    assert current < classic
    for form, form_rule in FORM_RULES.items():
        if form_rule.allowed_by is None:
            assert form in current and form in classic, form
        else:  # a capability form: current allows it, classic rejects it
            assert form in classic and form not in current, form


@pytest.mark.parametrize(("form", "sqlstate", "message"), [
    ("STATISTICS", "0A000", "CREATE STATISTICS is not supported"),
    ("FOR_KEY_SHARE", "0A000", "SELECT ... FOR KEY SHARE is not supported"),
    ("WIDE_NUMERIC", "0A000", "numeric precision above 38 or scale outside 0..37 is not supported"),
    ("NUMERIC_KEY", "0A000", "numeric columns as index keys is not supported"),
])
def test_features_of_2026_are_current_only(form: str, sqlstate: str, message: str) -> None:
    from dsql_migrate.forms import Form, rejection

    assert rejection(CURRENT, Form[form]) is None
    rule = rejection(CLASSIC, Form[form])
    assert rule is not None
    assert (rule.sqlstate, rule.error()) == (sqlstate, message)


def test_a_profile_with_other_limits_has_the_same_verdicts() -> None:
    from dsql_migrate.forms import rejected_forms

    smaller = CLASSIC.with_limits({"rows_per_transaction": 100})
    assert dict(rejected_forms(smaller)) == dict(rejected_forms(CLASSIC))
