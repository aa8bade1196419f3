"""Remote sources: an HTTP endpoint (JSON or CSV) and any SQLAlchemy database.

Both return a `Received` whose bytes are exactly what identifies the submission:
the HTTP body as served, or the query result serialised as canonical UTF-8 CSV.
"""

from __future__ import annotations

import csv
import io
import time
import urllib.error
import urllib.request

from evaluation.catalogue import Source
from evaluation.ingest.model import IngestError, Received, TransientSourceError

RETRY_STATUS = {429, 500, 502, 503, 504}


def fetch_http(source: Source, year: int, *, retries: int | None = None, backoff: float = 0.5) -> Received:
    """GET the source URL with a timeout; retry network errors and 5xx responses with backoff.

    Raises TransientSourceError when the last failure was worth retrying, IngestError otherwise.
    """
    url = source.location(year)
    attempts = (source.retries if retries is None else retries) + 1
    last = ""
    transient = False
    limit = source.limits.max_bytes
    for attempt in range(1, attempts + 1):
        try:
            request = urllib.request.Request(url, headers={"Accept": "application/json, text/csv;q=0.9, */*;q=0.1",
                                                           "User-Agent": "twomountains"})
            with urllib.request.urlopen(request, timeout=source.timeout) as response:
                data = response.read(limit + 1)
            if len(data) > limit:
                raise IngestError(f"{url} 返回的内容超过 {limit / 2**20:g} MB 上限，拒绝读取。")
            name = f"{source.department}_{year}.{source.format}"
            return Received(source.department, int(year), "http", url, name, data, source.format)
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            transient = exc.code in RETRY_STATUS
            if not transient:
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{type(reason).__name__}: {reason}"
            transient = True
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    error = TransientSourceError if transient else IngestError
    raise error(f"无法从 {url} 获取数据（尝试 {attempts} 次）：{last}")


class _ConnectionLost(Exception):
    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def fetch_sql(source: Source, year: int, *, retries: int | None = None, backoff: float = 0.5) -> Received:
    """Run the source query (with :year bound) and serialise the result as canonical CSV.

    A refused or lost connection is retried (and raised as TransientSourceError in the end);
    a wrong query or a missing table is not.
    """
    attempts = (source.retries if retries is None else retries) + 1
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            return _query(source, year)
        except _ConnectionLost as exc:
            last = exc.detail
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise TransientSourceError(f"无法连接数据库（{source.describe()}，尝试 {attempts} 次）：{last}")


def _query(source: Source, year: int) -> Received:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    url = source.location(year)
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise IngestError(f"数据库连接配置有误（{source.describe()}）：{type(exc).__name__}") from None
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise _ConnectionLost(str(getattr(exc, "orig", None) or exc)[:200]) from None
        with conn:
            statement = text(source.query or "")
            params = {"year": int(year)} if ":year" in (source.query or "") else {}
            result = conn.execute(statement, params)
            headers = list(result.keys())
            rows = [list(r) for r in result]
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise _ConnectionLost(str(exc.orig)[:200]) from None
        raise IngestError(f"数据库查询失败（{source.describe()}）：{str(exc.orig)[:200]}") from None
    except SQLAlchemyError as exc:
        raise IngestError(f"数据库查询失败（{source.describe()}）：{str(exc)[:200]}") from None
    finally:
        engine.dispose()
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
    data = buf.getvalue().encode("utf-8")
    return Received(source.department, int(year), "sql", source.describe(), f"{source.department}_{year}.csv", data, "csv")
