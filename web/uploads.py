"""Reading an upload form while it streams in, within limits.

The body is parsed chunk by chunk (python-multipart's streaming parser), never spooled whole first:
a file over the limit is refused as soon as the limit is passed, and a request without the session's
CSRF token is refused before a byte of its file is kept (the token field comes first in the form).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

FIELD_LIMIT = 16 * 1024  # bytes of one ordinary form field
FORM_OVERHEAD = 64 * 1024  # bytes a form may hold beyond its file (headers, fields)


class Refused(Exception):
    """The upload is refused: HTTP status and one Chinese sentence."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message
        self.read = 0  # bytes of the body read when refused


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    file_name: str | None = None
    data: bytes = b""
    read: int = 0  # bytes of the body read


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


async def read_upload(request, *, limit: int, check_token) -> Form:
    """Parse a multipart upload form with one file field. `check_token(fields)` is called when the file
    part begins (and at the end, for a form without a file) and must return True."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise Refused(400, "上传格式不正确，请使用页面上的“上传”按钮选择文件。")
    declared = request.headers.get("content-length")
    too_big = f"文件超过 {_size(limit)} 上限，未接收；请只上传本部门的填报表。"
    if declared and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise Refused(413, too_big)  # said before a byte of the body is read

    form = Form()
    state = {"headers": {}, "field": b"", "name": None, "file": None, "header_field": b"", "header_value": b""}
    buffer = bytearray()

    def on_part_begin():
        state["headers"], state["name"], state["file"] = {}, None, None
        state["header_field"], state["header_value"] = b"", b""

    def on_header_field(data, start, end):
        state["header_field"] += data[start:end]

    def on_header_value(data, start, end):
        state["header_value"] += data[start:end]

    def on_header_end():
        state["headers"][state["header_field"].decode("latin-1").lower()] = state["header_value"]
        state["header_field"], state["header_value"] = b"", b""

    def on_headers_finished():
        _, options = parse_options_header(state["headers"].get("content-disposition", b""))
        state["name"] = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        state["field"] = b""
        if filename is not None:
            if form.file_name is not None:
                raise Refused(400, "一次只能上传一个文件。")
            if not check_token(form.fields):
                raise Refused(403, "页面已过期或缺少安全令牌，未接收文件；请刷新页面后重新上传。")
            state["file"] = True
            form.file_name = filename.decode("utf-8", "replace")

    def on_part_data(data, start, end):
        chunk = data[start:end]
        if state["file"]:
            buffer.extend(chunk)
            if len(buffer) > limit:
                raise Refused(413, too_big)
        else:
            state["field"] += chunk
            if len(state["field"]) > FIELD_LIMIT:
                raise Refused(413, "表单内容过长。")

    def on_part_end():
        if not state["file"] and state["name"]:
            form.fields[state["name"]] = state["field"].decode("utf-8", "replace")

    parser = MultipartParser(params[b"boundary"], callbacks={
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    async for chunk in request.stream():
        form.read += len(chunk)
        try:
            if form.read > limit + FORM_OVERHEAD:
                raise Refused(413, too_big)
            parser.write(chunk)
        except Refused as exc:
            exc.read = form.read  # how much of the body was read before the refusal (for the audit line)
            raise
        except Exception:  # noqa: BLE001 - a malformed body can make the parser raise anything
            raise Refused(400, "上传内容不完整或格式不正确，请重新上传。") from None
    parser.finalize()
    if form.file_name is None and not check_token(form.fields):
        raise Refused(403, "页面已过期或缺少安全令牌，请刷新页面后重试。")
    form.data = bytes(buffer)
    return form
