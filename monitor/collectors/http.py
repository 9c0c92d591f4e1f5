"""HTTP plumbing shared by the collectors built on requests: a timeout cap, a base-URL swap,
and short descriptions of network failures for the one log line a fault gets."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter


class ApiAdapter(HTTPAdapter):
    """Caps every request's timeout at `timeout` (tweepy sets none, and a hung socket would hold a
    scheduler thread forever; prawcore always asks for 16 s) and, with `base_url`, sends requests
    for `api_url` there instead (a proxy, or a local fake API in tests)."""

    def __init__(self, timeout: float, api_url: str, base_url: str | None = None):
        super().__init__()
        self.timeout = timeout
        self.api_url = api_url.rstrip("/")
        self.base_url = base_url.rstrip("/") if base_url else None

    def send(self, request, **kwargs):
        asked = kwargs.get("timeout")
        if asked is None or (isinstance(asked, (int, float)) and asked > self.timeout):
            kwargs["timeout"] = self.timeout
        if self.base_url and request.url.startswith(self.api_url):
            request.url = self.base_url + request.url[len(self.api_url):]
        return super().send(request, **kwargs)


def mount(session: requests.Session, api_url: str, timeout: float, base_url: str | None = None) -> None:
    session.mount(api_url, ApiAdapter(timeout, api_url, base_url))


def capped_session(timeout: float) -> requests.Session:
    """A session whose every request, to any host, waits at most `timeout` seconds."""
    session = requests.Session()
    for scheme in ("https://", "http://"):
        session.mount(scheme, ApiAdapter(timeout, scheme))
    return session


def root_cause(exc: BaseException) -> BaseException:
    """The innermost error under requests' and urllib3's wrappers (e.g. ConnectionResetError)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in reversed(exc.args) if isinstance(a, BaseException)), None)
        if inner is None:
            inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def describe_network_error(exc: BaseException) -> str:
    """'timed out' or 'connection failed (ConnectionResetError)', without URLs or headers."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return f"connection failed ({type(root_cause(exc)).__name__})"
