"""``huzhu createsuperuser``: the first three administrators, typed in, full password policy (S1),
three different accounts (S6)."""

from __future__ import annotations

import builtins
import getpass
from collections.abc import Iterator

import pytest

from huzhu.cli import main
from huzhu.core.audit import Event
from huzhu.core.models import AuditEvent
from huzhu.orgs.bootstrap import create_first_admins_interactive
from huzhu.orgs.models import Union, User
from tests import factories

PASSWORDS = {
    "sysadmin": "Orchid-Lake-7731",
    "secadmin": "Maple#River-2048",
    "auditadmin": "Cedar!Stone-5519",
}


class Console:
    """Scripted answers for input() and getpass.getpass(), in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> None:
        self.answers: Iterator[str] = iter(answers)
        self.prompts: list[str] = []
        monkeypatch.setattr(builtins, "input", self._answer)
        monkeypatch.setattr(getpass, "getpass", self._answer)

    def _answer(self, prompt: str = "") -> str:
        self.prompts.append(prompt)
        try:
            return next(self.answers)
        except StopIteration:
            raise EOFError from None


def _admin_answers(
    username: str, password: str | None = None, again: str | None = None
) -> list[str]:
    password = password or PASSWORDS[username]
    return [username, "", password, again if again is not None else password]


def _three_admins() -> list[str]:
    return [answer for name in PASSWORDS for answer in _admin_answers(name)]


@pytest.mark.django_db
def test_first_start_creates_the_province_and_three_administrators(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    console = Console(
        monkeypatch,
        ["湖南省总工会", "430000", *_three_admins()],
    )
    assert create_first_admins_interactive() == 0
    province = Union.objects.get()
    assert (province.name, province.kind, province.code, province.parent_id) == (
        "湖南省总工会",
        "provincial",
        "430000",
        None,
    )
    for username, password in PASSWORDS.items():
        user = User.objects.get(username=username)
        assert user.role_codes() == {username}
        assert user.organisation_id == province.pk
        assert user.check_password(password)
    assert User.objects.count() == 3
    assert any("密码" in p for p in console.prompts)
    out = capsys.readouterr().out
    assert "三员账号已就绪" in out
    events = AuditEvent.objects.filter(event=Event.USER_CREATED).values_list("channel", flat=True)
    assert list(events) == ["cli", "cli", "cli"]
    for password in PASSWORDS.values():
        assert password not in out


@pytest.mark.django_db
def test_weak_or_mismatched_passwords_are_asked_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    factories.union(None, "湖南省总工会", "provincial", region_code="430000")
    Console(
        monkeypatch,
        _admin_answers("sysadmin", "Huzhu-Demo-2026"[:8])  # too short, one try used
        + _admin_answers("sysadmin", "Orchid-Lake-7731", "Orchid-Lake-7732")  # mismatch
        + _admin_answers("sysadmin")
        + _admin_answers("secadmin", "Sysadmin-Strong-2026-x".replace("Sysadmin", "secadmin"))
        + _admin_answers("secadmin")
        + _admin_answers("auditadmin", "湖南省总工会-Abc-2026")  # contains the organisation name
        + _admin_answers("auditadmin"),
    )
    assert create_first_admins_interactive() == 0
    err = capsys.readouterr().err
    assert "密码长度太短，至少需要12个字符" in err
    assert "两次输入的密码不一致" in err
    assert "密码不能包含用户名" in err
    assert "密码不能包含所在组织名称" in err
    assert set(User.objects.values_list("username", flat=True)) == set(PASSWORDS)


@pytest.mark.django_db
def test_the_demo_password_and_a_common_password_are_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    factories.union(None, "湖南省总工会", "provincial", region_code="430000")
    Console(
        monkeypatch,
        _admin_answers("sysadmin", "password")
        + _admin_answers("sysadmin", "qwerty123456")
        + _admin_answers("sysadmin", "abcdefghijklmnop"),
    )
    assert create_first_admins_interactive() == 1
    err = capsys.readouterr().err
    assert "这个密码太常见了。" in err
    assert "多次输入无效，未创建系统管理员（管理账号）。" in err
    assert not User.objects.exists()


@pytest.mark.django_db
def test_a_second_run_keeps_existing_administrators_and_completes_the_rest(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    province = factories.union(None, "湖南省总工会", "provincial", region_code="430000")
    existing = factories.staff(province, "sysadmin", username="sysadmin")
    Console(monkeypatch, _admin_answers("secadmin") + _admin_answers("auditadmin"))
    assert create_first_admins_interactive() == 0
    assert "系统管理员（管理账号）已存在：sysadmin（跳过）" in capsys.readouterr().out
    assert User.objects.get(username="sysadmin").password == existing.password
    assert User.objects.count() == 3
    assert Union.objects.count() == 1


@pytest.mark.django_db
def test_the_same_username_cannot_hold_two_administrator_roles(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    factories.union(None, "湖南省总工会", "provincial", region_code="430000")
    Console(
        monkeypatch,
        _admin_answers("sysadmin")
        + _admin_answers("sysadmin", PASSWORDS["secadmin"])  # the same account again
        + _admin_answers("secadmin")
        + _admin_answers("auditadmin"),
    )
    assert create_first_admins_interactive() == 0
    assert "用户名已存在" in capsys.readouterr().err
    assert {u.username: u.role_codes() for u in User.objects.all()} == {
        "sysadmin": {"sysadmin"},
        "secadmin": {"secadmin"},
        "auditadmin": {"auditadmin"},
    }


@pytest.mark.django_db
def test_invalid_region_code_is_asked_again_and_eof_cancels(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Console(monkeypatch, ["湖南省总工会", "4300", "湖南省总工会", "430000", "sysadmin"])
    assert create_first_admins_interactive() == 1
    captured = capsys.readouterr()
    assert "行政区划代码应为6位数字（GB/T 2260）" in captured.err
    assert "已取消" in captured.err
    assert Union.objects.filter(code="430000").count() == 1
    assert not User.objects.exists()


@pytest.mark.django_db
def test_cli_command(monkeypatch: pytest.MonkeyPatch) -> None:
    Console(
        monkeypatch,
        ["", "", *_three_admins()],  # "": the defaults 湖南省总工会 / 430000
    )
    assert main(["createsuperuser"]) == 0
    assert Union.objects.get().name == "湖南省总工会"
    assert User.objects.count() == 3
