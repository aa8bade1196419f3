"""Cells: headers made comparable, numbers read in one meaning only, bureau text capped for messages."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from decimal import Decimal, InvalidOperation

# Cells that mean "no value" in bureau tables.
BLANKS = {"", "-", "—", "–", "--", "/", "无", "空", "n/a", "na", "nan", "none", "null", "…", "..."}
NOT_A_NUMBER = "必须是数值"
TEXT_CAP = 40  # characters of bureau text quoted in a message
LIST_CAP = 10  # items of a bureau list quoted in a message

_PLAIN = re.compile(r"(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_THOUSANDS = re.compile(r"[1-9]\d{0,2}(,\d{3})+(\.\d+)?", re.ASCII)  # 1,234 and 1,234,567.5
_DOT_THOUSANDS_COMMA_DECIMAL = re.compile(r"\d{1,3}(\.\d{3})+,\d+", re.ASCII)  # 1.234,5
_ONE_COMMA = re.compile(r"(\d*),(\d+)", re.ASCII)
_SPACED_DIGITS = re.compile(r"\d\s+\d")
# A column stating the table's year: 年度, 年份, 统计年度, 数据年度, 年 ...
YEAR_HEADER = re.compile(r"(统计|数据|报告|报送|填报|所属|统计数据)?(年度|年份)|年")
_YEAR = re.compile(r"((?:19|20)\d{2})(?:\.0+)?(?:年度?)?", re.ASCII)
_MINUS = {"\u2212": "-", "\u2012": "-", "\u2013": "-", "\ufe63": "-"}


class NumberFormError(ValueError):
    """A cell that is not a number in one meaning; str() is the Chinese reason for the bureau."""

    def __init__(self, reason: str = NOT_A_NUMBER):
        super().__init__(reason)
        self.reason = reason


class Percent(float):
    """A number an xlsx cell shows as a percentage (0.2916 shown as 29.16%)."""


def clip(text: object, limit: int = TEXT_CAP) -> str:
    """Bureau text as quoted in a message: one line, at most `limit` characters, then "…"."""
    flat = re.sub(r"\s+", " ", "" if text is None else str(text)).strip()
    flat = "".join(ch if unicodedata.category(ch)[0] != "C" else "?" for ch in flat[: limit + 1])
    return flat if len(flat) <= limit else flat[:limit] + "…"


def clip_list(items, unit: str = "项", limit: int = LIST_CAP, sep: str = "、") -> str:
    """Up to `limit` clipped items, then "等 N 项" with the whole count."""
    items = list(items)
    shown = sep.join(clip(i) for i in items[:limit])
    return shown + (f" 等 {len(items)} {unit}" if len(items) > limit else "")


def normalise_header(text: object) -> str:
    """Make headers comparable: NFKC folds full-width brackets, then spaces and line breaks go."""
    if text is None:
        return ""
    folded = unicodedata.normalize("NFKC", str(text))
    return re.sub(r"\s+", "", folded)


def _suggest(sign: str, body: str, percent: bool) -> str:
    return clip(sign + body + ("%" if percent else ""))


def parse_cell(raw: object) -> tuple[float | None, bool]:
    """Parse a bureau cell into (value, written_as_percent). None when blank.

    A number is read only when it has one meaning: 1234, "1,234" and "1,234,567.5" (commas in
    groups of three), "12.5%", full-width digits ("１２．５"). Anything else raises
    `NumberFormError`, whose message says which form is expected: "0,29" (a decimal comma:
    write 0.29), "1.234,5", "12 345" (a space: thousands or two numbers?), text, booleans,
    dates and infinities.
    """
    if raw is None:
        return None, False
    if isinstance(raw, bool):
        raise NumberFormError()
    if isinstance(raw, (dt.datetime, dt.date, dt.time)):
        raise NumberFormError("单元格是日期或时间格式，请改为“常规”或“数值”格式后填写数值")
    if isinstance(raw, Percent):
        value = float(raw)
        if math.isnan(value):
            return None, False
        if math.isinf(value):
            raise NumberFormError()
        try:
            return float(Decimal(repr(value)) * 100), True  # 0.2916 -> 29.16 exactly as shown
        except InvalidOperation:
            raise NumberFormError() from None
    if isinstance(raw, (int, float)):
        value = float(raw)
        if math.isnan(value):
            return None, False
        if math.isinf(value):
            raise NumberFormError()
        return value, False
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    for dash, minus in _MINUS.items():
        text = text.replace(dash, minus)
    if text.lower() in BLANKS:
        return None, False
    joined = re.sub(r"\s+", "", text)
    if _SPACED_DIGITS.search(text):
        raise NumberFormError(f"数字中间有空格，无法确定写法，请去掉空格（如 {clip(joined)}）")
    text = joined
    percent = text.endswith("%")
    if percent:
        text = text[:-1]
    sign = ""
    if text[:1] in "+-":
        sign, text = text[:1], text[1:]
    if _PLAIN.fullmatch(text):
        body = text
    elif _THOUSANDS.fullmatch(text):
        body = text.replace(",", "")
    elif _DOT_THOUSANDS_COMMA_DECIMAL.fullmatch(text):
        whole, frac = text.split(",")
        raise NumberFormError("疑似用点作千位分隔、逗号作小数点，请写作 "
                              + _suggest(sign, whole.replace(".", "") + "." + frac, percent))
    elif (one := _ONE_COMMA.fullmatch(text)) and (len(one[2]) != 3 or one[1] in ("", "0")):
        raise NumberFormError("疑似用逗号作小数点，请写作 " + _suggest(sign, (one[1] or "0") + "." + one[2], percent))
    elif re.fullmatch(r"\d+。\d+", text):
        raise NumberFormError("疑似用句号作小数点，请写作 " + _suggest(sign, text.replace("。", "."), percent))
    elif re.fullmatch(r"[\d,.]+", text, re.ASCII) and "," in text:
        raise NumberFormError("数字中逗号的位置不对，无法确定数值；请不用千位分隔符，小数点用“.”（如 "
                              + _suggest(sign, text.replace(",", ""), percent) + "）")
    elif re.fullmatch(r"\d*(\.\d*){2,}", text, re.ASCII):
        raise NumberFormError("数字中有多个小数点，无法确定数值；请不用千位分隔符，只保留一个小数点")
    else:
        raise NumberFormError()
    value = float(sign + body)
    if math.isinf(value) or math.isnan(value):
        raise NumberFormError()
    return value, percent


def cell_text(raw: object) -> str:
    """A cell as the bureau sees it (2022.0 -> "2022"); empty for a blank cell."""
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()


def stated_year(text: str) -> int | None:
    """The year a year-column cell states ("2022", "2022年", "２０２２年度"), or None."""
    match = _YEAR.fullmatch(re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)))
    return int(match[1]) if match else None


def parse_number(raw: object) -> float | None:
    return parse_cell(raw)[0]
