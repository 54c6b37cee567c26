"""The CLI's HTTP side: JSON requests to the API with a token, and where the server and the token come from.

Configuration, first found wins: ``--url`` / the environment (``WORKFLOWS_URL``, ``WORKFLOWS_TOKEN``) / a TOML
file (``WORKFLOWS_CONFIG``, else ``~/.config/workflows/config.toml``) with ``url = "..."`` and ``token = "..."``.
``url`` is where the dashboard is mounted (``http://127.0.0.1:8000/`` or ``https://example.com/wf/``): the API is
its ``api/``. Only the standard library: no client dependency beyond what the app has.
"""

from __future__ import annotations

import json
import os
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("~/.config/workflows/config.toml")


class CliError(Exception):
    """A refusal to show the user: ``status`` is the HTTP status (0: no answer at all)."""

    def __init__(self, message: str, status: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.status, self.body = status, body


@dataclass
class Config:
    url: str
    token: str

    @classmethod
    def load(cls, url: str | None = None, token: str | None = None) -> Config:
        path = Path(os.environ.get("WORKFLOWS_CONFIG") or DEFAULT_CONFIG).expanduser()
        stored: dict[str, Any] = {}
        if path.is_file():
            try:
                stored = tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise CliError(f"Cannot read {path}: {exc}") from None
        url = url or os.environ.get("WORKFLOWS_URL") or stored.get("url") or ""
        token = token or os.environ.get("WORKFLOWS_TOKEN") or stored.get("token") or ""
        if not url:
            raise CliError(f"No server: set WORKFLOWS_URL or url in {path}")
        if not token:
            raise CliError(
                f"No token: create one on the dashboard's Tokens page, then set WORKFLOWS_TOKEN or token in {path}"
            )
        return cls(url=url if url.endswith("/") else url + "/", token=token)


class Client:
    def __init__(self, config: Config, timeout: float = 30) -> None:
        self.config, self.timeout = config, timeout
        parts = urllib.parse.urlsplit(config.url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.api = urllib.parse.urljoin(config.url, "api/")

    def url(self, path: str) -> str:
        """An API path (``runs/42/``) or a path the API answered (``/api/runs/?cursor=…``) as a full URL."""
        return self.origin + path if path.startswith("/") else self.api + path

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.config.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                answer = json.loads(payload)
            except ValueError:
                answer = {"error": payload.decode(errors="replace")[:500] or exc.reason}
            raise CliError(_describe(exc.code, answer), exc.code, answer) from None
        except (urllib.error.URLError, OSError) as exc:
            raise CliError(f"Cannot reach {self.config.url}: {getattr(exc, 'reason', exc)}") from None

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")}, doseq=True)
        return self.request("GET", f"{path}?{query}" if query else path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def live_url(self) -> str:
        """The websocket's URL, as the API's index gives its path (it follows the dashboard's prefix)."""
        path = self.get("")["live"]
        scheme = "wss" if self.origin.startswith("https:") else "ws"
        return f"{scheme}://{self.origin.split('://', 1)[1]}{path}"


def _describe(status: int, answer: Any) -> str:
    message = answer.get("error") if isinstance(answer, dict) else None
    text = f"{status}: {message or answer}"
    for e in (answer.get("errors") or []) if isinstance(answer, dict) else []:
        loc = ".".join(str(p) for p in e.get("loc", [])) or "input"
        text += f"\n  {loc}: {e.get('msg')}"
    return text
