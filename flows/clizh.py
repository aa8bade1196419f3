"""The command line's own words in Chinese: usage errors, help headings, and help text wrapped by display
width (a CJK character takes two terminal columns; click counts it as one, so its help ran past 80 columns).

typer 0.29 runs on its own copy of click (`typer._click`), whose messages are English f-strings, while
typer's and click's own modules mark theirs for gettext. `install()` therefore does three things:
- points every module's gettext (`_`, `ngettext`) at TEXT_ZH;
- translates a usage error's finished English sentence by pattern (`translate`) where it is shown
  (`UsageError.show`), and the help page's fixed phrases (`Command.get_help`);
- makes the help formatter measure and wrap by display width.
A message no pattern knows is shown as typer wrote it; the tests hold the common ones to Chinese.
"""

from __future__ import annotations

import re

import sys
import unicodedata

# click's and typer's templates -> ours, with the same placeholders ({value!r} etc. are filled by click)
TEXT_ZH: dict[str, str] = {
    "Usage:": "用法：",
    "Options": "选项",
    "Arguments": "参数",
    "Positional arguments": "参数",
    "Commands": "命令",
    "Show this message and exit.": "显示本帮助并退出。",
    "Error: {message}": "错误：{message}",
    "Try '{command} {option}' for help.": "运行“{command} {option}”查看帮助。",
    "Invalid value: {message}": "取值无效：{message}",
    "Invalid value for {param_hint}: {message}": "{param_hint} 的取值无效：{message}",
    "Missing argument": "缺少参数",
    "Missing option": "缺少选项",
    "Missing parameter": "缺少参数",
    "Missing {param_type}": "缺少{param_type}",
    "Missing parameter: {param_name}": "缺少参数：{param_name}",
    "No such option {name!r}.": "没有选项 {name!r}。",
    "No such option: {name}": "没有选项 {name}",
    "No such command {name!r}.": "没有命令 {name!r}。",
    "Missing command.": "缺少命令。",
    "Aborted!": "已取消。",
    "Did you mean {possibility}?": "是否想用 {possibility}？",
    "(Did you mean one of: {possibilities}?)": "（是否想用其中之一：{possibilities}？）",
    "Got unexpected extra argument ({args})": "多余的参数（{args}）",
    "Got unexpected extra arguments ({args})": "多余的参数（{args}）",
    "Option {name!r} requires an argument.": "选项 {name} 需要一个值。",
    "Option {name!r} requires {nargs} arguments.": "选项 {name} 需要 {nargs} 个值。",
    "Option {name!r} does not take a value.": "选项 {name} 不接受取值。",
    "Argument {name!r} takes {nargs} values.": "参数 {name} 需要 {nargs} 个值。",
    "{value!r} is not a valid {number_type}.": "{value!r} 不是有效的数字。",
    "{value} is not in the range {range}.": "{value} 不在 {range} 范围内。",
    "{value!r} is not a valid boolean.": "{value!r} 不是有效的是/否值。",
    "{value!r} is not one of {choices}.": "{value!r} 不是可选值之一：{choices}。",
    "{value!r} is not {choice}.": "{value!r} 不是可选值 {choice}。",
    "{value!r} does not match the format {format}.": "{value!r} 不符合格式 {format}。",
    "{value!r} does not match the formats {formats}.": "{value!r} 不符合格式 {formats}。",
    "{name} {filename!r} does not exist.": "{name} {filename!r} 不存在。",
    "{name} {filename!r} is a file.": "{name} {filename!r} 是文件。",
    "{name} {filename!r} is a directory.": "{name} {filename!r} 是目录。",
    "{name} {filename!r} is not readable.": "{name} {filename!r} 不可读。",
    "{name} {filename!r} is not writable.": "{name} {filename!r} 不可写。",
    "{name} {filename!r} is not executable.": "{name} {filename!r} 不可执行。",
    "Could not open file {filename!r}: {message}": "无法打开文件 {filename!r}：{message}",
    "unknown error": "未知错误",
    "{value!r} is not a valid UUID.": "{value!r} 不是有效的 UUID。",
    "Choose from:\n\t{choices}": "可选：\n\t{choices}",
    "Choice({choices})": "可选（{choices}）",
    "Invalid start character for option ({option})": "选项的首字符无效（{option}）",
    "{value!r} is not a valid boolean. Recognized values: {states}": "{value!r} 不是有效的是/否值。可用：{states}",
    "file": "文件",
    "directory": "目录",
    "path": "路径",
    "required": "必填",
    "default: {default}": "默认：{default}",
    "env var: {var}": "环境变量：{var}",
    "(dynamic)": "（动态）",
    "Takes {nargs} values but 1 was given.": "需要 {nargs} 个值，只给了 1 个。",
    "Takes {nargs} values but {len} were given.": "需要 {nargs} 个值，给了 {len} 个。",
}


# a usage error's sentence as typer's click writes it -> ours (applied in order; the first that matches)
PATTERNS: list[tuple[str, str]] = [
    (r"Missing option (.+?)\.(?: (.*))?", r"缺少选项 \1。"),
    (r"Missing argument (.+?)\.(?: (.*))?", r"缺少参数 \1。"),
    (r"Missing parameter:? (.+?)\.?", r"缺少参数 \1。"),
    (r"No such option: (\S+) \(Possible options: (.*)\)", r"没有选项 \1（是否想用：\2）。"),
    (r"No such option: (\S+)", r"没有选项 \1。"),
    (r"No such command (.+)\.", r"没有命令 \1。"),
    (r"Missing command\.", "缺少命令。"),
    (r"Got unexpected extra arguments? \((.*)\)", r"多余的参数（\1）。"),
    (r"Option (.+) requires an argument\.", r"选项 \1 需要一个值。"),
    (r"Option (.+) requires (\d+) arguments\.", r"选项 \1 需要 \2 个值。"),
    (r"Option (.+) does not take a value\.", r"选项 \1 不接受取值。"),
    (r"Invalid value for (.+?): (.*)", None),  # the reason is translated on its own
    (r"Invalid value: (.*)", None),
]
REASONS: list[tuple[str, str]] = [
    (r"Input should be a valid integer.*", "应为整数"),
    (r"Input should be a valid number.*", "应为数字"),
    (r"Input should be a valid boolean.*", "应为是/否值"),
    (r"Input should be a valid date.*", "应为日期"),
    (r"(?:Value )?(.+) is not a valid (?:integer|int)\.?", r"\1 不是整数"),
    (r"(?:Value )?(.+) is not a valid (?:float|number)\.?", r"\1 不是数字"),
    (r"(?:Value )?(.+) is not a valid (?:boolean|bool)\.?", r"\1 不是有效的是/否值"),
    (r"(?:Value )?(.+) is not a valid (\w+)\.?", r"\1 不是有效的 \2"),
    (r"(.+) is not one of (.*)\.", r"\1 不是可选值之一：\2"),
    (r"(.+) is not in the range (.*)\.", r"\1 不在 \2 范围内"),
    (r"(?:File|Path) (.+) does not exist\.", r"文件 \1 不存在"),
    (r"Directory (.+) does not exist\.", r"目录 \1 不存在"),
]


def _reason(text: str) -> str:
    for pattern, template in REASONS:
        found = re.fullmatch(pattern, text.strip())
        if found:
            return found.expand(template)
    return text


def translate(message: str) -> str:
    """A usage error's English sentence (typer's click) in Chinese; unknown ones as they are."""
    for pattern, template in PATTERNS:
        found = re.fullmatch(pattern, message.strip(), flags=re.S)
        if not found:
            continue
        if template is not None:
            return found.expand(template)
        if found.re.groups == 2:
            return f"{found.group(1)} 的取值无效：{_reason(found.group(2))}。"
        return f"取值无效：{_reason(found.group(1))}。"
    return message


def _usage_zh(text: str) -> str:
    return re.sub(r"^Usage: ", "用法：", text, flags=re.M)


def _help_zh(text: str) -> str:
    return _usage_zh(text).replace("Show this message and exit.", "显示本帮助并退出。")


def _show_usage_error(self, file=None) -> None:
    """UsageError.show in Chinese: the usage line, where to find help, what is wrong."""
    import typer._click.utils as utils

    color = None
    if self.ctx is not None:
        color = self.ctx.color
        hint = ""
        if self.ctx.command.get_help_option(self.ctx) is not None:
            hint = f"运行“{self.ctx.command_path} {self.ctx.help_option_names[0]}”查看帮助。\n"
        utils.echo(f"{_usage_zh(self.ctx.get_usage())}\n{hint}", file=file, err=file is None, color=color)
    utils.echo(f"错误：{translate(self.format_message())}", file=file, err=file is None, color=color)


def gettext(message: str) -> str:
    return TEXT_ZH.get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return gettext(singular if n == 1 else plural)


def _modules() -> list:
    """click's modules, typer's own copy of them (typer 0.29 vendors click as typer._click) and typer's."""
    return [module for name, module in sorted(sys.modules.items())
            if module is not None and (name.startswith(("click.", "typer._click.")) or name in ("typer.core", "typer.main"))]


def install() -> None:
    """Chinese messages and display-width help for click, typer and typer's copy of click (idempotent)."""
    import click  # noqa: F401 - click itself too (prefect's and uvicorn's commands), patched the same way
    import typer  # noqa: F401 - loads typer's copy of click
    import typer._click.core as core
    import typer._click.exceptions as exceptions

    for module in _modules():
        if hasattr(module, "_"):
            module._ = gettext
        if hasattr(module, "ngettext"):
            module.ngettext = ngettext
        # the HelpFormatter (at most 78 columns wide) measures and wraps through these module globals
        if module.__name__.endswith(".formatting"):
            module.term_len = display_width
            module.wrap_text = wrap_text
    if not getattr(core.Command.get_help, "zh", False):
        english = core.Command.get_help

        def get_help(self, ctx):
            return _help_zh(english(self, ctx))

        get_help.zh = True
        core.Command.get_help = get_help
    exceptions.UsageError.show = _show_usage_error


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Terminal columns a string takes (ANSI styles left out, as click's own term_len does)."""
    from click._compat import strip_ansi

    return sum(_char_width(c) for c in strip_ansi(text))


def _tokens(text: str) -> list[str]:
    """Words and spaces of Latin text, single characters of CJK text (a line may break between any two)."""
    out: list[str] = []
    word = ""
    for char in text:
        if char == " ":
            if word:
                out.append(word)
            out.append(" ")
            word = ""
        elif _char_width(char) == 2:
            if word:
                out.append(word)
            out.append(char)
            word = ""
        else:
            word += char
    if word:
        out.append(word)
    merged: list[str] = []  # an opening mark never ends a line: it travels with what follows it
    for token in out:
        if merged and merged[-1] != " " and merged[-1][-1] in _OPENERS and token != " ":
            merged[-1] += token
        else:
            merged.append(token)
    return merged


_OPENERS = set("[（「《‘“(<")
_NO_LINE_START = set("，。；：、）」》’”!?,.;:)]")


def _wrap_line(text: str, width: int, initial_indent: str, subsequent_indent: str) -> list[str]:
    """Greedy wrapping by display width; a closing mark (，。）…) never starts a line: the character before
    it moves down with it."""
    lines: list[str] = []
    line: list[str] = []
    indent = initial_indent

    def used() -> int:
        return display_width(indent) + sum(display_width(t) for t in line)

    for token in _tokens(text):
        if token == " " and not line:
            continue
        size = display_width(token)
        if line and used() + size > width:
            carried: list[str] = []
            if token in _NO_LINE_START and len(line) > 1 and line[-1] != " ":
                carried = [line.pop()]
            lines.append((indent + "".join(line)).rstrip())
            line, indent = carried, subsequent_indent
            if token == " ":
                continue
        while size > width - used() and len(token) > 1:  # a word longer than a line: cut it
            room = width - used()
            cut = 1
            while cut < len(token) and display_width(token[:cut + 1]) <= room:
                cut += 1
            if line:
                lines.append((indent + "".join(line)).rstrip())
                line, indent = [], subsequent_indent
                continue
            lines.append(indent + token[:cut])
            token, indent = token[cut:], subsequent_indent
            size = display_width(token)
        line.append(token)
    if line or not lines:
        lines.append((indent + "".join(line)).rstrip())
    return lines


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def wrap_text(text: str, width: int = 78, initial_indent: str = "", subsequent_indent: str = "",
              preserve_paragraphs: bool = False) -> str:
    """click.formatting.wrap_text by display width: paragraphs split on blank lines; a paragraph starting with
    \\b keeps its lines as written."""
    if not preserve_paragraphs:
        return "\n".join(_wrap_line(" ".join(text.split()), width, initial_indent, subsequent_indent))
    out: list[str] = []
    for block in text.split("\n\n"):
        if block.lstrip().startswith("\b"):  # lines kept as written; one too long for the terminal is wrapped
            body = block.lstrip()[1:].strip("\n")
            out.append("\n".join(part for line in body.splitlines()
                                  for part in _wrap_line(line.strip(), width, initial_indent + " " * _indent(line),
                                                         subsequent_indent + " " * (_indent(line) + 2))))
            continue
        indent = len(block) - len(block.lstrip())
        lines = _wrap_line(" ".join(block.split()), width, initial_indent + " " * indent,
                           subsequent_indent + " " * indent)
        out.append("\n".join(lines))
    return "\n\n".join(out)
