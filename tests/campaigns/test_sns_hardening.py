"""The SES/SNS webhook does no outbound work for a request it can reject on its own: the
certificate address and the topic are checked before any fetch, the certificate cache is
bounded, and a failed fetch answers 503 (never 500)."""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from campaigns import bounces
from tests.campaigns.test_bounces import _certificate, _signed_sns

_KEY, _PEM = _certificate()
_TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"
# A SES bounce for a message we never sent: verifies, records nothing.
_MESSAGE = json.dumps(
    {
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"status": "5.1.1"}]},
        "mail": {"commonHeaders": {"messageId": "<zoë.ñúñez@例え.jp>"}, "source": "Ольга@x.ru"},
    }
)


def _cert_url() -> str:
    return (
        f"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-{secrets.token_hex(8)}.pem"
    )


class Recorder:
    """Stands in for the network: records every address asked for."""

    def __init__(self, answer: bytes | BaseException = _PEM) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


class NoNetwork:
    """Replaces the real opener: any use of it fails the test."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network used: {args!r}")


@pytest.fixture
def webhook_app(app_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    bounces._CERTS.clear()
    monkeypatch.setattr(bounces, "_OPENER", NoNetwork())
    app: Flask = app_factory()
    with app.app_context():
        yield app
    bounces._CERTS.clear()


def _post(app: Flask, envelope: dict[str, Any]) -> Any:
    return app.test_client().post("/webhooks/ses", data=json.dumps(envelope))


def _notification(cert_url: str, **extra: Any) -> dict[str, Any]:
    return _signed_sns(_KEY, cert_url, {"Type": "Notification", "Message": _MESSAGE, **extra})


CRAFTED = [
    "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem",
    "https://sns.evil.com/SimpleNotificationService-a.pem",
    "https://evil.com/SimpleNotificationService-a.pem",
    "https://sns.eu-west-1.amazonaws.com.evil.com/SimpleNotificationService-a.pem",
    "https://amazonaws.com.evil.com/SimpleNotificationService-a.pem",
    "https://sns.eu-west-1.amazonaws.com./SimpleNotificationService-a.pem",
    "https://sns.eu-west-1.amazonaws.com.cn.evil.com/a.pem",
    "https://sns..amazonaws.com/a.pem",
    "https://xsns.eu-west-1.amazonaws.com/a.pem",
    "https://s3.eu-west-1.amazonaws.com/bucket/a.pem",
    "https://evil.com@sns.eu-west-1.amazonaws.com/a.pem",
    "https://sns.eu-west-1.amazonaws.com@evil.com/a.pem",
    "https://sns.eu-west-1.amazonaws.com:pw@evil.com/a.pem",
    "https://sns.eu-west-1.amazonaws.com:8443/a.pem",
    "https://sns.eu-west-1.amazonaws.com:443/a.pem",
    "https://sns.eu-west-1.amazonaws.com:/a.pem",
    "https://sns.eu-west-1.amazonaws.com\\@evil.com/a.pem",
    "https://sns.eu-west-1.amazon\taws.com/a.pem",  # urlsplit drops the tab
    "https://sns.eu-west-1.amazonaws.com\n/a.pem",
    "https://sns.eu-west-1.amazonaws\u3002com/a.pem",  # IDNA reads U+3002 as a dot
    "https://\u0455ns.eu-west-1.amazonaws.com/a.pem",  # Cyrillic dze, looks like an s
    "https://54.239.28.85/a.pem",
    "https://[::1]/a.pem",
    "https://[2001:db8::1]:443/a.pem",
    "https://127.0.0.1/a.pem",
    "https://sns.eu-west-1.amazonaws.com/cert.txt",
    "https://sns.eu-west-1.amazonaws.com/",
    "https://sns.eu-west-1.amazonaws.com/a.pem?redirect=https://evil.com/",
    "https://sns.eu-west-1.amazonaws.com/a.pem#x",
    "//sns.eu-west-1.amazonaws.com/a.pem",
    "file:///etc/ssl/cert.pem",
    "ftp://sns.eu-west-1.amazonaws.com/a.pem",
    "",
]


@pytest.mark.parametrize("cert_url", CRAFTED)
def test_a_crafted_certificate_address_is_refused_without_any_fetch(
    webhook_app: Flask, cert_url: str
) -> None:
    fetch = Recorder()
    webhook_app.config["SNS_HTTP_GET"] = fetch
    response = _post(webhook_app, _notification(cert_url))
    assert response.status_code == 403
    assert fetch.calls == []
    assert len(bounces._CERTS) == 0


def test_the_address_check_accepts_amazons_own_certificate_addresses() -> None:
    for url in (
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-3250158c6da8e33e7e05e7b6b5ea2b04.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-a.pem",
    ):
        assert bounces.sns_url_allowed(url, certificate=True), url
    assert bounces.sns_url_allowed(
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=x"
    )
    assert not bounces.sns_url_allowed(
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription", certificate=True
    )


def test_a_foreign_topic_is_refused_before_any_fetch(webhook_app: Flask) -> None:
    fetch = Recorder()
    webhook_app.config.update(SNS_HTTP_GET=fetch, SES_TOPIC_ARNS=f" {_TOPIC} , arn:aws:sns:x")
    foreign = _notification(_cert_url(), TopicArn="arn:aws:sns:eu-west-1:999999999999:spam")
    assert _post(webhook_app, foreign).status_code == 403
    missing = _notification(_cert_url())
    del missing["TopicArn"]
    assert _post(webhook_app, missing).status_code == 403
    assert fetch.calls == []

    accepted = _post(webhook_app, _notification(_cert_url()))
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    assert accepted.get_json() == {"result": "recorded 0"}
    assert len(fetch.calls) == 1


@pytest.mark.parametrize(
    "failure",
    [
        urllib.error.URLError("name resolution failed"),
        TimeoutError("timed out"),
        urllib.error.HTTPError("https://sns", 404, "Not Found", None, None),  # type: ignore[arg-type]
        ConnectionResetError(),
        ValueError("unknown url type"),
    ],
    ids=["dns", "timeout", "http-404", "reset", "bad-url"],
)
def test_a_failed_certificate_fetch_answers_503_not_500(
    webhook_app: Flask, failure: BaseException
) -> None:
    fetch = Recorder(failure)
    webhook_app.config["SNS_HTTP_GET"] = fetch
    response = _post(webhook_app, _notification(_cert_url()))
    assert response.status_code == 503
    assert len(fetch.calls) == 1
    assert len(bounces._CERTS) == 0  # nothing cached: the next delivery tries again


def test_a_certificate_that_is_not_one_answers_403_and_is_not_cached(webhook_app: Flask) -> None:
    url = _cert_url()
    for junk in ("<html>Zoë Ñúñez</html>".encode(), b"", b"\x00" * 100):
        webhook_app.config["SNS_HTTP_GET"] = Recorder(junk)
        assert _post(webhook_app, _notification(url)).status_code == 403
    assert len(bounces._CERTS) == 0


def test_the_real_fetch_uses_a_short_timeout_and_its_failure_answers_503(
    webhook_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, float]] = []

    class SlowAmazon:
        def open(self, url: str, timeout: float) -> Any:
            asked.append((url, timeout))
            raise TimeoutError("timed out")

    monkeypatch.setattr(bounces, "_OPENER", SlowAmazon())
    url = _cert_url()
    assert _post(webhook_app, _notification(url)).status_code == 503
    assert asked == [(url, bounces.SNS_FETCH_TIMEOUT_SECONDS)]
    assert bounces.SNS_FETCH_TIMEOUT_SECONDS <= 3


def test_the_real_fetch_does_not_follow_redirects() -> None:
    hits: list[str] = []

    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(302)
            self.send_header("Location", "/elsewhere.pem")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(urllib.error.HTTPError):
            bounces._http_get(f"http://127.0.0.1:{server.server_port}/a.pem")
    finally:
        server.shutdown()
        server.server_close()
    assert hits == ["/a.pem"]


def test_the_certificate_cache_never_grows_beyond_its_bound(webhook_app: Flask) -> None:
    fetch = Recorder()
    webhook_app.config["SNS_HTTP_GET"] = fetch
    urls = [_cert_url() for _ in range(bounces.SNS_CERT_CACHE_SIZE * 3)]
    for url in urls:
        response = _post(webhook_app, _notification(url))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert len(bounces._CERTS) <= bounces.SNS_CERT_CACHE_SIZE
    assert len(bounces._CERTS) == bounces.SNS_CERT_CACHE_SIZE
    assert fetch.calls == urls

    # The most recent are served from the cache; the oldest was dropped and is fetched again.
    assert _post(webhook_app, _notification(urls[-1])).status_code == 200
    assert len(fetch.calls) == len(urls)
    assert _post(webhook_app, _notification(urls[0])).status_code == 200
    assert fetch.calls[-1] == urls[0]
    assert len(bounces._CERTS) == bounces.SNS_CERT_CACHE_SIZE


def test_a_failed_subscription_confirmation_answers_503(webhook_app: Flask) -> None:
    url = _cert_url()
    fetch = Recorder()
    webhook_app.config["SNS_HTTP_GET"] = fetch
    confirm = _signed_sns(
        _KEY,
        url,
        {
            "Type": "SubscriptionConfirmation",
            "Message": "You have chosen to subscribe to the topic",
            "Token": "2336412f37fb687f5d51e6e2425c464de",
            "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=x",
        },
    )
    # The certificate is fetched and cached; then Amazon fails on the confirmation.
    assert _post(webhook_app, _notification(url)).status_code == 200
    fetch.answer = urllib.error.URLError("unreachable")
    assert _post(webhook_app, confirm).status_code == 503
    evil = _signed_sns(
        _KEY,
        url,
        {
            "Type": "SubscriptionConfirmation",
            "Message": "m",
            "Token": "t",
            "SubscribeURL": "https://sns.eu-west-1.amazonaws.com.evil.com/?Action=Confirm",
        },
    )
    calls = len(fetch.calls)
    assert _post(webhook_app, evil).status_code == 403
    assert len(fetch.calls) == calls
