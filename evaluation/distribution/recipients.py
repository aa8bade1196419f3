"""Who receives which report: config/recipients.yaml, loaded and checked once.

The file maps every county of the catalogue to its recipients and names the
recipients of the city summary. It is checked against the catalogue on load, so a
county that would silently receive nothing, an address outside the allowed domains
or an id that cannot be a folder name is refused before anything is sent. Problems
are reported in Chinese (``RecipientsError``), one line each, without traceback
material.

The optional ``smtp:`` section configures the email channel; credentials are read
from the environment variables it names, never from the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from evaluation.catalogue import Catalogue, default_config_dir
from evaluation.yamlsafe import load_yaml

RECIPIENTS_FILE = "recipients.yaml"
RECIPIENTS_ENV = "TWOMOUNTAINS_RECIPIENTS"

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CODE = re.compile(r"^\d{6}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")

DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


class RecipientsError(ValueError):
    """config/recipients.yaml is invalid or unreadable; the message (Chinese) says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# syntax helpers ----------------------------------------------------------------

def normalise_domain(domain: str) -> str | None:
    """The lower-cased domain if it is a syntactically valid host name with a dot, else None."""
    domain = domain.strip().lower().rstrip(".")
    if not domain or len(domain) > 253 or "." not in domain:
        return None
    labels = domain.split(".")
    if not all(_DOMAIN_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return None
    return domain


def normalise_address(address: str) -> str | None:
    """``local@domain`` with the domain lower-cased, or None when not a plain valid address.

    Deliberately narrower than RFC 5322: no display names, comments, quoted local
    parts or IP-literal domains, which a recipient list has no use for.
    """
    if not isinstance(address, str) or _CONTROL.search(address) or address.count("@") != 1:
        return None
    local, _, domain = address.strip().partition("@")
    norm_domain = normalise_domain(domain)
    if not local or len(local) > 64 or not _LOCAL_PART.match(local) or norm_domain is None:
        return None
    return f"{local}@{norm_domain}"


def domain_allowed(address: str, allowed: list[str]) -> bool:
    """True when the address's domain is an allowed domain or a sub-domain of one."""
    domain = address.rpartition("@")[2]
    return any(domain == d or domain.endswith("." + d) for d in allowed)


def _checked_address(value: str, what: str) -> str:
    norm = normalise_address(value)
    if norm is None:
        raise ValueError(f"{what}“{value}”格式无效")
    return norm


def _plain_name(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what}不能为空")
    if _CONTROL.search(value):
        raise ValueError(f"{what}“{value!r}”含有换行或控制字符")
    return value


# models ------------------------------------------------------------------------

class Recipient(_Strict):
    """One receiving office: a folder-safe id, a display name and an address."""

    id: str
    name: str
    email: str

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(
                f"收件人标识“{value}”无效：只能由小写字母、数字、“-”和“_”组成，"
                "以小写字母或数字开头，最长64个字符"
            )
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _plain_name(value, "收件人名称")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return _checked_address(value, "邮箱地址")


class SmtpSettings(_Strict):
    """How the email channel reaches its server; credentials come from the named env variables."""

    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    from_address: str
    from_name: str = "陇南市生态环境局"
    timeout: float = Field(default=30, gt=0, le=600)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        if not value or _CONTROL.search(value) or any(c in value for c in " /@"):
            raise ValueError(f"邮件服务器地址“{value}”无效")
        return value

    @field_validator("username_env", "password_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"“{value}”不是环境变量名（这里只填写变量名，不要填写用户名或密码本身）")
        return value

    @field_validator("from_address")
    @classmethod
    def _from_address(cls, value: str) -> str:
        return _checked_address(value, "发件地址")

    @field_validator("from_name")
    @classmethod
    def _from_name(cls, value: str) -> str:
        return _plain_name(value, "发件人名称")

    @model_validator(mode="after")
    def _both_or_neither(self) -> "SmtpSettings":
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env 和 password_env 须同时填写或同时省略")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]

    _given: tuple[str, str] | None = PrivateAttr(default=None)

    def with_credentials(self, username: str, password: str) -> "SmtpSettings":
        """These settings with credentials handed over by the caller (e.g. from a Prefect Secret block)."""
        copy = self.model_copy()
        copy._given = (username, password)
        return copy

    def credentials(self) -> tuple[str, str] | None:
        """(username, password): given ones, else from the environment; None when no login is configured."""
        if self._given is not None:
            return self._given
        if self.username_env is None or self.password_env is None:
            return None
        missing = [name for name in (self.username_env, self.password_env) if not os.environ.get(name)]
        if missing:
            raise RecipientsError(
                f"邮件服务器需要登录，但环境变量 {'、'.join(missing)} 未设置；"
                "请在运行环境中设置后重试（不要把密码写进配置文件）。"
            )
        return os.environ[self.username_env], os.environ[self.password_env]


class Recipients(_Strict):
    """The checked recipient list. Build it with ``load_recipients`` (which checks it against the catalogue)."""

    verified: bool = False
    allowed_domains: list[str]
    counties: dict[str, list[Recipient]]
    city: list[Recipient]
    city_code: str
    smtp: SmtpSettings | None = None

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("allowed_domains 不能为空：至少列出一个允许的邮箱域名")
        out = []
        for item in value:
            norm = normalise_domain(item) if isinstance(item, str) else None
            if norm is None:
                raise ValueError(f"“{item}”不是有效的域名")
            out.append(norm)
        return out

    @field_validator("counties")
    @classmethod
    def _codes(cls, value: dict[str, list[Recipient]]) -> dict[str, list[Recipient]]:
        for code in value:
            if not _CODE.match(code):
                raise ValueError(f"区县代码“{code}”应为6位数字")
        return value

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> "Recipients":
        problems: list[str] = []
        catalogue: Catalogue | None = (info.context or {}).get("catalogue")
        if catalogue is not None:
            problems += _catalogue_problems(self, catalogue)
        if not self.city:
            problems.append(f"没有配置市级汇总报告（{self.city_code}）的收件人（city）")
        seen: set[str] = set()
        for where, person in self.everyone():
            if person.id in seen:
                problems.append(f"收件人标识“{person.id}”重复出现（{where}）；每个收件人的标识必须唯一")
            seen.add(person.id)
            if not domain_allowed(person.email, self.allowed_domains):
                problems.append(
                    f"收件人 {person.id}（{where}）的邮箱“{person.email}”不在允许的域名内"
                    f"（allowed_domains：{'、'.join(self.allowed_domains)}）"
                )
        if problems:
            raise ValueError("\n  - ".join(problems))
        return self

    # lookups -------------------------------------------------------------------

    def everyone(self) -> list[tuple[str, Recipient]]:
        """(where, recipient) for every entry, counties by code first, then the city."""
        out = [(f"counties.{code}", r) for code in sorted(self.counties) for r in self.counties[code]]
        return out + [("city", r) for r in self.city]

    def for_code(self, code: str) -> list[Recipient]:
        """The recipients of a county code, or of the city summary for the city code; [] if none."""
        if code == self.city_code:
            return list(self.city)
        return list(self.counties.get(code, []))


def _catalogue_problems(recipients: Recipients, catalogue: Catalogue) -> list[str]:
    problems = []
    known = {c.code for c in catalogue.counties}
    for county in catalogue.counties:
        if not recipients.counties.get(county.code):
            problems.append(f"区县 {county.code}（{county.name}）没有配置收件人")
    for code in sorted(set(recipients.counties) - known):
        if code == catalogue.city.code:
            problems.append(f"{code} 是市级代码（{catalogue.city.name}），市级收件人请写在 city 下")
        else:
            problems.append(f"区县代码 {code} 不在目录（config/zones.yaml）中")
    return problems


# loading -----------------------------------------------------------------------

def default_recipients_path() -> Path:
    """$TWOMOUNTAINS_RECIPIENTS if set, else config/recipients.yaml of the repository."""
    env = os.environ.get(RECIPIENTS_ENV)
    return Path(env) if env else default_config_dir() / RECIPIENTS_FILE


_ERROR_TYPES = {
    "missing": "缺少必填项",
    "extra_forbidden": "不认识的字段（可能拼写有误）",
    "string_type": "应为文本",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为列表",
    "dict_type": "应为映射（键: 值）",
    "model_type": "应为映射（键: 值）",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "literal_error": "取值不在允许范围内",
    "greater_than": "数值过小",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
}


def _describe_error(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "value_error":
        msg = str(err["msg"]).removeprefix("Value error, ")
    else:
        msg = _ERROR_TYPES.get(err["type"], str(err["msg"]))
        if err["type"] == "literal_error":
            msg += f"（{str(err.get('ctx', {}).get('expected', '')).replace(' or ', '、').replace(', ', '、')}）"
    return f"{loc}：{msg}" if loc else msg


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecipientsError(f"无法读取收件人配置文件 {path}：{exc.strerror or type(exc).__name__}") from None
    try:
        raw = load_yaml(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"第{mark.line + 1}行第{mark.column + 1}列附近" if mark is not None else "某处"
        raise RecipientsError(f"收件人配置文件 {path} 不是有效的 YAML：{where}有语法错误") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipientsError(f"收件人配置文件 {path} 的顶层应为映射（verified、allowed_domains、counties、city 等）")
    return raw


def load_recipients(catalogue: Catalogue, path: Path | str | None = None, *,
                    config_dir: Path | str | None = None) -> Recipients:
    """Load and check ``path``, else the recipients.yaml beside the catalogue's config folder ``config_dir``,
    else the default (``default_recipients_path``), against ``catalogue``."""
    if not path and config_dir:
        path = Path(config_dir) / RECIPIENTS_FILE
    path = Path(path) if path else default_recipients_path()
    raw = _read_yaml(path)
    counties = raw.get("counties")
    if isinstance(counties, dict):
        raw["counties"] = {str(code): people for code, people in counties.items()}
    raw.setdefault("counties", {})
    raw.setdefault("city", [])
    raw["city_code"] = catalogue.city.code
    try:
        return Recipients.model_validate(raw, context={"catalogue": catalogue})
    except ValidationError as exc:
        lines = [_describe_error(err) for err in exc.errors()]
        raise RecipientsError(f"收件人配置检查未通过（{path}）：\n  - " + "\n  - ".join(lines)) from None
