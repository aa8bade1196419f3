"""Portal accounts in the ledger's database: hashes, throttling per name and per address, resets."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from evaluation.accounts import ADDRESS_FAILURES, LOCK_MINUTES, MAX_FAILURES, AccountError, Accounts

NOW = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.timezone.utc)
PASSWORD = "a-long-password-1"


@pytest.fixture
def accounts(tmp_path):
    with Accounts.at(tmp_path) as book:
        book.add("eco01", PASSWORD, "bureau", now=NOW, department="eco", departments={"eco": "生态环境局"})
        yield book


def test_passwords_are_argon2id_hashes_never_text(accounts):
    with accounts.engine.connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM portal_accounts")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.sign_in("eco01", PASSWORD, now=NOW).account.username == "eco01"


def test_accounts_are_checked_in_chinese(accounts):
    for args, said in [(("Eco 01", PASSWORD, "bureau"), "用户名须为"), (("x02", "short", "analyst"), "密码至少 10 个字符"),
                       (("x03", PASSWORD, "boss"), "未知角色"), (("x04", PASSWORD, "bureau"), "须指定部门"),
                       (("eco01", PASSWORD, "analyst"), "已存在")]:
        with pytest.raises(AccountError, match=said):
            accounts.add(*args, now=NOW)
    with pytest.raises(AccountError, match="未知部门：farm"):
        accounts.add("x05", PASSWORD, "bureau", now=NOW, department="farm", departments={"eco": "生态环境局"})


def test_a_locked_name_opens_again_after_the_lock_and_after_a_reset(accounts):
    for _ in range(MAX_FAILURES):
        outcome = accounts.sign_in("eco01", "wrong-password", now=NOW)
    assert outcome.locked and f"锁定 {LOCK_MINUTES} 分钟" in outcome.message
    assert accounts.sign_in("eco01", PASSWORD, now=NOW + dt.timedelta(minutes=LOCK_MINUTES - 1)).locked
    assert accounts.sign_in("eco01", PASSWORD, now=NOW + dt.timedelta(minutes=LOCK_MINUTES + 1)).account
    for _ in range(MAX_FAILURES):
        accounts.sign_in("ECO01 ", "wrong-password", now=NOW)  # the name as typed, folded
    stamp = accounts.get("eco01").password_stamp
    accounts.reset_password("eco01", "another-password-2")
    assert accounts.get("eco01").password_stamp != stamp  # sessions signed before the reset end
    assert accounts.sign_in("eco01", "another-password-2", now=NOW).account


def test_one_address_trying_many_names_is_stopped_and_others_are_not(accounts):
    for i in range(ADDRESS_FAILURES):
        outcome = accounts.sign_in(f"guess{i:02d}", PASSWORD, now=NOW, address="10.0.0.9")
    assert outcome.locked and "从本机地址登录失败的次数过多" in outcome.message
    assert accounts.sign_in("eco01", PASSWORD, now=NOW, address="10.0.0.9").locked  # even a right password waits
    assert accounts.sign_in("eco01", PASSWORD, now=NOW, address="10.0.0.10").account  # another address signs in
    # a name typed to look like an address key locks nothing but that name
    for _ in range(MAX_FAILURES):
        accounts.sign_in("addr:10.0.0.11", "x", now=NOW)
    assert accounts.sign_in("eco01", PASSWORD, now=NOW, address="10.0.0.11").account


def test_a_disabled_account_cannot_sign_in_and_counts_no_failure(accounts):
    accounts.set_active("eco01", False)
    outcome = accounts.sign_in("eco01", PASSWORD, now=NOW)
    assert outcome.account is None and "已停用" in outcome.message and not outcome.locked
    accounts.set_active("eco01", True)
    assert accounts.sign_in("eco01", PASSWORD, now=NOW).account
