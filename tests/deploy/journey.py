"""What a person does on a freshly deployed site, over real HTTP: sign up (the verification mail
arrives at a real SMTP server on loopback), confirm, open the create page, make a picture and
wait for it, then fetch it from storage. Used by the deployment tests.

The site runs with production settings behind "a proxy that terminates TLS": every request says
X-Forwarded-Proto: https from 127.0.0.1 (FORWARDED_ALLOW_IPS' default), so secure cookies,
the HTTPS redirect and the CSRF origin check behave as they would in production.
"""

from __future__ import annotations

import contextlib
import email
import html
import http.cookies
import re
import threading
import time
import uuid
from collections.abc import Iterator
from email.message import Message
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
from aiosmtpd.controller import Controller

from tests.procfile import free_port

PASSWORD = "a-long-deploy-test-password-41"


class Browser:
    """Keeps cookies as a browser on https would: the site's cookies are Secure, and between the
    proxy and the app the scheme is http, so the cookies are kept here, not in httpx's jar."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        host = urlsplit(base_url).netloc
        self.cookies: dict[str, str] = {}
        self.client = httpx.Client(
            base_url=self.base_url,
            headers={"X-Forwarded-Proto": "https", "Referer": f"https://{host}/", "Origin": f"https://{host}"},
            timeout=30,
        )

    def _send(self, method: str, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        self.client.cookies.clear()
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        response = self.client.request(method, path, data=data, headers=headers)
        for header in response.headers.get_list("set-cookie"):
            for name, morsel in http.cookies.SimpleCookie(header).items():
                if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, path: str) -> httpx.Response:
        return self._send("GET", path)

    def post_form(self, path: str, fields: dict[str, str], *, action: str | None = None) -> httpx.Response:
        """Opens `path` and submits its form that posts to `action` (by default the path itself;
        a pattern where the page makes the action, as the confirm-email page does)."""
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code, page.text[:500])
        if action is not None:
            found_action = re.search(f'action="({action})"', page.text)
            assert found_action, (path, _visible_text(page.text))
            path = html.unescape(found_action.group(1))
        found = form_fields(page.text, action=path)
        # No form posting to the path (its CSRF token comes with it): say which page came back.
        assert "csrfmiddlewaretoken" in found, (path, _visible_text(page.text))
        return self._send("POST", path, found | fields)

    def close(self) -> None:
        self.client.close()


def _visible_text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))[-1500:]


class _FormParser(HTMLParser):
    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.fields: dict[str, str] = {}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action", "") in ("", self.action) and a.get("method", "get").lower() == "post"
        elif not self.inside:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("radio", "checkbox"):
                if "checked" in a or (kind == "radio" and a["name"] not in self.fields):
                    self.fields[a["name"]] = a.get("value", "on")
            elif kind not in ("submit", "file"):
                self.fields.setdefault(a["name"], a.get("value", ""))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and ("selected" in a or self._select not in self.fields):
            self.fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None


def form_fields(page: str, *, action: str) -> dict[str, str]:
    """The fields a browser would send from the page's POST form to `action` (defaults kept)."""
    parser = _FormParser(action)
    parser.feed(page)
    return parser.fields


class Mailbox:
    """A real SMTP server on loopback; the site's EMAIL_HOST/EMAIL_PORT point at it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Message] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        with self._arrived:
            self.messages.append(email.message_from_bytes(envelope.content))
            self._arrived.notify_all()
        return "250 OK"

    @contextlib.contextmanager
    def running(self) -> Iterator[Mailbox]:
        controller = Controller(self, hostname="127.0.0.1", port=self.port)
        controller.start()
        try:
            yield self
        finally:
            controller.stop()

    def settings(self) -> dict[str, str]:
        return {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(self.port), "EMAIL_USE_TLS": "false"}

    def wait_for(self, to: str, seconds: float = 30) -> Message:
        deadline = time.monotonic() + seconds
        with self._arrived:
            while True:
                for message in self.messages:
                    if to in message.get("To", ""):
                        return message
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no mail to {to} within {seconds} s"
                self._arrived.wait(remaining)


def _text(message: Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "\n".join(
        part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        for part in parts
        if part.get_content_type() == "text/plain"
    )


def new_address(who: str) -> str:
    # Each run its own: allauth sends one verification mail per address every three minutes, and
    # its counters live in the Redis that other runs share.
    return f"{who}.{uuid.uuid4().hex[:10]}@example.com"


def sign_up_and_confirm(browser: Browser, mailbox: Mailbox, address: str) -> None:
    response = browser.post_form("/accounts/signup/", {"email": address, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302, response.text[:2000]
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", _text(mailbox.wait_for(address)))
    assert link, "the verification mail carries no confirmation link"
    path = urlsplit(link.group(0)).path
    # The page's form posts to a key of its own: allauth signs the address again as it renders
    # (to the second), so on a busy machine it differs from the mail's.
    response = browser.post_form(path, {}, action='/accounts/confirm-email/[^/"]+/')
    assert response.status_code == 302, response.text[:2000]


def create_picture(browser: Browser, prompt: str) -> str:
    """Submits the create form; returns the job page's path."""
    response = browser.post_form("/create/", {"prompt": prompt})
    assert response.status_code == 302, response.text[:3000]
    location = urlsplit(response.headers["Location"]).path
    assert re.fullmatch(r"/jobs/[0-9a-f-]{36}/", location), location
    return location


def wait_until_finished(browser: Browser, job_page: str, seconds: float = 90) -> str:
    """Reads the job page until its status is final; returns the page."""
    deadline = time.monotonic() + seconds
    while True:
        page = browser.get(job_page)
        assert page.status_code == 200, page.status_code
        status = re.search(r'data-status="(\w+)"', page.text).group(1)
        if status in ("succeeded", "failed", "canceled"):
            return page.text
        assert time.monotonic() < deadline, f"the job is still {status} after {seconds} s"
        time.sleep(0.5)


def fetch_output(browser: Browser, job_page_html: str) -> bytes:
    """Follows the page's first output link: the file view redirects to the storage's signed URL."""
    path = html.unescape(re.search(r'"(/files/[0-9a-f-]{36}/)"', job_page_html).group(1))
    response = browser.get(path)
    if response.status_code in (301, 302):
        response = httpx.get(response.headers["Location"], timeout=30)
    assert response.status_code == 200, response.status_code
    return response.content
