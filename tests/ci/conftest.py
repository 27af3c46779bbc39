"""A fake GitHub REST API on 127.0.0.1 (http.server in a thread): the issue-comment endpoints
the sticky review comment uses, with ``Link`` pagination and a switch that denies writes."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

TOKEN = "ghs_fake-token-s3cr3t-value"


@dataclass
class FakeGitHub:
    url: str = ""
    token: str = TOKEN
    #: comments per "owner/name#number", in creation order
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    page_size: int | None = None  # force small pages (None: honour per_page)
    deny_writes: bool = False
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, auth
    next_id: int = 1000

    def add(self, repo: str, number: int, body: str, user: str = "someone") -> int:
        self.next_id += 1
        self.comments.setdefault(f"{repo}#{number}", []).append(
            {"id": self.next_id, "body": body, "user": {"login": user},
             "html_url": f"https://github.test/{repo}/pull/{number}#issuecomment-{self.next_id}"})
        return self.next_id


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization", "")
            fake.requests.append((self.command, self.path, auth))
            if auth != f"Bearer {fake.token}":
                self._reply(401, {"message": "Bad credentials"})
                return False
            return True

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            data = json.loads(self.rfile.read(length) or b"{}")
            assert isinstance(data, dict)
            return data

        def do_GET(self) -> None:
            if not self._authorized():
                return
            parts = urlsplit(self.path)
            found = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments", parts.path)
            if not found:
                self._reply(404, {"message": "Not Found"})
                return
            query = parse_qs(parts.query)
            per_page = fake.page_size or int(query.get("per_page", ["30"])[0])
            page = int(query.get("page", ["1"])[0])
            items = fake.comments.get(f"{found[1]}#{found[2]}", [])
            chunk = items[(page - 1) * per_page: page * per_page]
            headers = {}
            if page * per_page < len(items):
                base = f"{fake.url}{parts.path}?per_page={per_page}"
                last = (len(items) + per_page - 1) // per_page
                headers["Link"] = (f'<{base}&page={page + 1}>; rel="next", '
                                   f'<{base}&page={last}>; rel="last"')
            self._reply(200, chunk, headers)

        def do_POST(self) -> None:
            if not self._authorized():
                return
            found = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments", self.path)
            if not found:
                self._reply(404, {"message": "Not Found"})
                return
            if fake.deny_writes:
                self._reply(403, {"message": "Resource not accessible by integration"})
                return
            new_id = fake.add(found[1], int(found[2]), self._body()["body"], user="bot")
            self._reply(201, next(c for c in fake.comments[f"{found[1]}#{found[2]}"]
                                  if c["id"] == new_id))

        def do_PATCH(self) -> None:
            if not self._authorized():
                return
            found = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)", self.path)
            if not found:
                self._reply(404, {"message": "Not Found"})
                return
            if fake.deny_writes:
                self._reply(403, {"message": "Resource not accessible by integration"})
                return
            body = self._body()["body"]
            for items in fake.comments.values():
                for comment in items:
                    if comment["id"] == int(found[2]):
                        comment["body"] = body
                        self._reply(200, comment)
                        return
            self._reply(404, {"message": "Not Found"})

    return Handler


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
