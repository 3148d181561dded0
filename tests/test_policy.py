"""Policy: defaults, presets, overrides and precise errors."""

import pytest

from prorata.core.policy import CHANGE_KINDS, PolicyError, build_policy
from prorata.core.presets import PRESETS

SEED_AND_PEER_PRESETS = {
    "kajoom",
    "groupdocs",
    "aircall",
    "chetspms",
    "gotoassist",
    "stripe",
    "killbill",
    "lago",
    "chargebee",
    "whmcs",
}


def test_all_ten_presets_exist_and_build():
    assert set(PRESETS) == SEED_AND_PEER_PRESETS
    for name in PRESETS:
        policy = build_policy(name)
        assert policy.name == name
        assert set(policy.rules) == set(CHANGE_KINDS)


def test_preset_values_that_define_each_system():
    assert build_policy("stripe").proration.unit == "second"
    assert build_policy("stripe").rule("upgrade").invoice == "next_invoice"
    assert build_policy("killbill").proration.ratio_digits == 9
    assert build_policy("killbill").proration.credit_from == "billed"
    assert build_policy("lago").classify == "price"
    assert build_policy("lago").change_day("cancel") == "used"
    assert build_policy("lago").rule("downgrade").timing == "end_of_term"
    assert build_policy("aircall").notice_days == 30
    assert build_policy("gotoassist").rule("downgrade").timing == "approval"
    assert build_policy("kajoom").rule("downgrade").credit == "none"
    assert build_policy("whmcs").rule("downgrade").credit == "account_credit"
    assert build_policy("groupdocs").licence_early_days == 90
    assert build_policy("whmcs").proration.from_free == "new_period"
    assert build_policy("whmcs").rule("period_change").anchor == "due_date"
    assert build_policy("whmcs").rule("period_change").equal_monthly == "nothing"


def test_keys_added_later_default_to_the_earlier_behaviour():
    policy = build_policy(None)
    assert policy.proration.from_free == "prorate"
    assert policy.rule("period_change").anchor == "reset"
    assert policy.rule("period_change").equal_monthly == "prorate"
    with pytest.raises(PolicyError, match=r"policy\.proration\.from_free"):
        build_policy({"proration": {"from_free": "always"}})


def test_overrides_merge_on_top_of_a_preset():
    policy = build_policy(
        {"preset": "stripe", "proration": {"unit": "day"}, "downgrade": {"timing": "end_of_term"}}
    )
    assert policy.proration.unit == "day"
    assert policy.proration.credit_from == "price"
    assert policy.rule("downgrade").timing == "end_of_term"
    again = policy.with_overrides({"rounding": "half_even"})
    assert again.rounding == "half_even" and policy.rounding == "half_up"


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ("paddle", "policy", "unknown preset 'paddle'"),
        ({"proration": {"unit": "week"}}, "policy.proration.unit", "'week' is not one of"),
        ({"upgrade": {"when": "now"}}, "policy.upgrade.when", "unknown policy key"),
        ({"notice": {"days": -1}}, "policy.notice.days", "whole number"),
        ({"notice": {"applies_to": ["refund"]}}, "policy.notice.applies_to", "'refund'"),
    ],
)
def test_bad_policies_name_the_key(spec, path, fragment):
    with pytest.raises(PolicyError) as error:
        build_policy(spec)
    assert error.value.path == path
    assert fragment in error.value.message
