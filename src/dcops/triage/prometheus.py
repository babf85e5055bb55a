"""A small, defensive client of the Prometheus HTTP API (instant queries) for the NOC view.

Prometheus' answers are treated as hostile input: bounded time, bounded size, and the JSON shape
of ``/api/v1/query`` checked field by field (an instant vector of ``{"metric": {str: str},
"value": [number, "string"]}``). Every failure is a :class:`PrometheusError` whose text names the
URL and the reason, for the page's banner. Answers are cached a few seconds, so a page view makes
a bounded number of queries however often it is reloaded.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

#: At most this many bytes of one answer are read (the NOC queries are aggregated per device).
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
#: At most this many series of one answer are kept.
MAX_SERIES = 50_000
DEFAULT_TIMEOUT = 3.0
DEFAULT_CACHE_SECONDS = 5.0


class PrometheusError(Exception):
    """Prometheus could not be asked, or answered something that is not an instant vector."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant vector: its labels, value and evaluation time (Unix seconds)."""

    labels: dict[str, str]
    value: float
    timestamp: float


def validate_url(url: str) -> str:
    """The Prometheus base URL without a trailing slash; ValueError naming what is wrong."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"Prometheus URL {url!r}: expected http:// or https:// "
                         "(e.g. http://127.0.0.1:9090)")
    if not parts.hostname:
        raise ValueError(f"Prometheus URL {url!r}: no host")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise ValueError(f"Prometheus URL {url!r}: {exc}") from None
    if parts.username or parts.password:
        raise ValueError(f"Prometheus URL {url!r}: credentials in the URL are refused")
    if parts.query or parts.fragment:
        raise ValueError(f"Prometheus URL {url!r}: no query string or fragment expected")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def label_value(value: str) -> str:
    """A PromQL string literal of `value` (quotes, backslashes and newlines escaped)."""
    return json.dumps(value, ensure_ascii=False)


def _number(raw: object, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise PrometheusError(f"{what} is not a number")
    try:
        return float(raw)
    except ValueError:
        raise PrometheusError(f"{what} is not a number: {str(raw)[:40]!r}") from None


def api_error(body: bytes) -> str | None:
    """``errorType: error`` of an API error document, else None."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("status") != "error":
        return None
    return f"{str(doc.get('errorType', 'error'))[:60]}: {str(doc.get('error', ''))[:300]}"


def parse_vector(body: bytes) -> list[Sample]:
    """The samples of an ``/api/v1/query`` answer; PrometheusError when it is not one."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PrometheusError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise PrometheusError("the answer is not a JSON object")
    if doc.get("status") != "success":
        raise PrometheusError(f"{str(doc.get('errorType', 'error'))[:60]}: "
                              f"{str(doc.get('error', 'status is not success'))[:300]}")
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        raise PrometheusError("expected data.resultType vector")
    result = data.get("result")
    if not isinstance(result, list):
        raise PrometheusError("data.result is not a list")
    if len(result) > MAX_SERIES:
        raise PrometheusError(f"{len(result)} series, more than {MAX_SERIES}")
    out: list[Sample] = []
    for i, item in enumerate(result):
        if not isinstance(item, dict):
            raise PrometheusError(f"data.result[{i}] is not an object")
        metric, value = item.get("metric"), item.get("value")
        if not isinstance(metric, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metric.items()):
            raise PrometheusError(f"data.result[{i}].metric is not a map of strings")
        if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str):
            raise PrometheusError(f"data.result[{i}].value is not [time, \"value\"]")
        ts = _number(value[0], f"data.result[{i}].value time")
        number = _number(value[1], f"data.result[{i}].value")
        if not math.isfinite(ts):
            raise PrometheusError(f"data.result[{i}].value time is not finite")
        out.append(Sample(dict(metric), number, ts))
    return out


class PrometheusClient:
    """Instant queries against one Prometheus, with a short cache shared by all page views."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 max_bytes: int = MAX_RESPONSE_BYTES,
                 cache_seconds: float = DEFAULT_CACHE_SECONDS) -> None:
        self.url = validate_url(url)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[Sample] | PrometheusError]] = {}
        self._lock = threading.Lock()
        self.requests = 0  # how many HTTP requests were made (tests check the cache with it)

    def query(self, expr: str) -> list[Sample]:
        """The instant vector of `expr` now (cached `cache_seconds`, failures too)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(expr)
            if hit is not None and now - hit[0] < self.cache_seconds:
                if isinstance(hit[1], PrometheusError):
                    raise hit[1]
                return hit[1]
        try:
            result: list[Sample] | PrometheusError = self._fetch(expr)
        except PrometheusError as exc:
            result = exc
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[expr] = (time.monotonic(), result)
        if isinstance(result, PrometheusError):
            raise result
        return result

    def _read(self, resp: Any) -> bytes:
        """At most max_bytes + 1 bytes, within the timeout in total (not per read)."""
        deadline = time.monotonic() + self.timeout
        chunks: list[bytes] = []
        size = 0
        while size <= self.max_bytes:
            if time.monotonic() > deadline:
                raise PrometheusError(f"Prometheus at {self.url}: answer not complete within "
                                      f"{self.timeout:g}s")
            chunk = resp.read(min(65536, self.max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)

    def _fetch(self, expr: str) -> list[Sample]:
        self.requests += 1
        target = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        # the scheme is http(s), checked by validate_url
        req = urllib.request.Request(target, headers={"Accept": "application/json"})  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                body = self._read(resp)
        except urllib.error.HTTPError as exc:
            # Prometheus answers a bad or failed query with 400/422/503 and its error JSON
            try:
                detail = api_error(exc.read(64 * 1024))
            except OSError:
                detail = None
            if detail:
                raise PrometheusError(f"Prometheus at {self.url} refused the query: HTTP "
                                      f"{exc.code} ({detail})") from None
            raise PrometheusError(f"Prometheus unreachable at {self.url}: HTTP {exc.code}"
                                  ) from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise PrometheusError(f"Prometheus unreachable at {self.url}: {reason}") from None
        if len(body) > self.max_bytes:
            raise PrometheusError(f"Prometheus at {self.url}: answer larger than "
                                  f"{self.max_bytes} bytes, refused")
        try:
            return parse_vector(body)
        except PrometheusError as exc:
            raise PrometheusError(f"Prometheus at {self.url} answered badly: {exc}") from None
