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
    assert build_policy("lago").classify_weeks_per_year == "52"
    assert build_policy("killbill").classify_weeks_per_year == "365/7"
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
    assert build_policy("lago").proration.arithmetic == "binary64"
    assert {build_policy(n).proration.arithmetic for n in set(PRESETS) - {"lago"}} == {"exact"}
    assert build_policy("chargebee").proration.unprorated == "full_price"
    assert {build_policy(n).proration.unprorated for n in set(PRESETS) - {"chargebee"}} == {
        "nothing"
    }


def test_keys_added_later_default_to_the_earlier_behaviour():
    policy = build_policy(None)
    assert policy.proration.from_free == "prorate"
    assert policy.rule("period_change").anchor == "reset"
    assert policy.rule("period_change").equal_monthly == "prorate"
    assert policy.proration.arithmetic == "exact"
    assert policy.proration.unprorated == "nothing"
    with pytest.raises(PolicyError, match=r"policy\.proration\.unprorated"):
        build_policy({"proration": {"unprorated": "half"}})
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
        (
            {"proration": {"arithmetic": "float"}},
            "policy.proration.arithmetic",
            "'float' is not one of",
        ),
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


def test_pending_lines_wait_for_the_renewal_unless_the_preset_says_otherwise():
    assert build_policy(None).pending_lines == "renewal"
    assert build_policy("chargebee").pending_lines == "renewal"
    assert build_policy("stripe").pending_lines == "any_invoice"
    with pytest.raises(PolicyError) as error:
        build_policy({"pending_lines": "never"})
    assert error.value.path == "policy.pending_lines"


def test_kill_bill_fixed_days_count():
    from datetime import date

    from prorata.core.calendar import days_30_360, days_fixed_30, period_days

    # published (TestInvoiceDateUtilsWithFixedProration): 22, 22, 8
    assert days_fixed_30(date(2023, 5, 23), date(2023, 6, 15)) == 22
    assert days_fixed_30(date(2024, 2, 23), date(2024, 3, 15)) == 22
    assert days_fixed_30(date(2023, 5, 15), date(2023, 5, 23)) == 8
    # the 31st: Kill Bill's rule and 30E/360 part ways
    assert days_fixed_30(date(2023, 1, 31), date(2023, 2, 15)) == 14
    assert days_30_360(date(2023, 1, 31), date(2023, 2, 15)) == 15
    assert days_fixed_30(date(2023, 5, 15), date(2023, 5, 31)) == 16
    assert period_days(date(2023, 2, 15), date(2023, 3, 15), "fixed_30") == 30
    assert build_policy({"preset": "killbill", "proration": {"basis": "fixed_30"}})
