"""A small OpenID Connect provider the tests start on loopback (no outside service).

It speaks the authorisation code flow with PKCE as real providers do: a discovery document,
an authorisation endpoint that shows a sign-in page (a button signs in as ``identity``), a
token endpoint that checks the client secret, the code, the redirect URI and the PKCE
verifier, and signs an RS256 ID token with a key published at its JWKS endpoint. Attributes
let a test make it misbehave (another signing key, another issuer or audience, an unverified
address) to see that the platform refuses.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from typing import Any

from authlib.jose import JsonWebKey, jwt
from flask import Flask, jsonify, redirect, render_template_string, request
from werkzeug.serving import make_server

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test provider</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:28rem;margin:3rem auto">
<h1>Test identity provider</h1><p>{{ client_id }} asks who you are.</p>
<form method="post" action="/authorize"><input type="hidden" name="ticket" value="{{ ticket }}">
<button type="submit">Continue as {{ email }}</button></form></body></html>"""


class OidcProvider:
    """The provider and its web server; ``url`` is its issuer."""

    def __init__(self, client_id: str = "envoy", client_secret: str = "provider-secret") -> None:  # noqa: S107
        self.client_id = client_id
        self.client_secret = client_secret
        self.key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
        self.signing_key: Any = self.key
        self.identity: dict[str, Any] = {
            "sub": "staff-1",
            "email": "ana@corp.example",
            "email_verified": True,
            "name": "Ana Corp",
        }
        self.issuer_claim: str | None = None  # another issuer in the token when set
        self.audience_claim: str | None = None
        self.nonce_claim: str | None = None
        self.token_requests = 0
        self._tickets: dict[str, dict[str, str]] = {}
        self._codes: dict[str, dict[str, str]] = {}
        self.app = self._build()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> OidcProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)

    def _id_token(self, client_id: str, nonce: str) -> str:
        now = int(time.time())
        claims = {
            **self.identity,
            "iss": self.issuer_claim or self.url,
            "aud": self.audience_claim or client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce_claim or nonce,
        }
        header = {"alg": "RS256", "kid": "k1"}
        return jwt.encode(header, claims, self.signing_key).decode()

    def _build(self) -> Flask:
        app = Flask("oidc-test-provider")

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            return jsonify(
                issuer=self.url,
                authorization_endpoint=f"{self.url}/authorize",
                token_endpoint=f"{self.url}/token",
                jwks_uri=f"{self.url}/jwks",
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                code_challenge_methods_supported=["S256"],
            )

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify(keys=[self.key.as_dict(is_private=False)])

        @app.get("/authorize")
        def authorize() -> Any:
            args = request.args
            if args.get("client_id") != self.client_id or args.get("response_type") != "code":
                return "unknown client", 400
            if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
                return "PKCE required", 400
            ticket = secrets.token_urlsafe(16)
            self._tickets[ticket] = dict(args)
            return render_template_string(
                PAGE, client_id=self.client_id, ticket=ticket, email=self.identity["email"]
            )

        @app.post("/authorize")
        def approve() -> Any:
            asked = self._tickets.pop(request.form.get("ticket", ""), None)
            if asked is None:
                return "unknown ticket", 400
            code = secrets.token_urlsafe(16)
            self._codes[code] = asked
            return redirect(f"{asked['redirect_uri']}?code={code}&state={asked['state']}")

        @app.post("/token")
        def token() -> Any:
            self.token_requests += 1
            auth = request.authorization
            if auth is None or (auth.username, auth.password) != (
                self.client_id,
                self.client_secret,
            ):
                return jsonify(error="invalid_client"), 401
            asked = self._codes.pop(request.form.get("code", ""), None)
            if asked is None or request.form.get("redirect_uri") != asked["redirect_uri"]:
                return jsonify(error="invalid_grant"), 400
            verifier = request.form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if challenge != asked["code_challenge"]:
                return jsonify(error="invalid_grant", error_description="PKCE"), 400
            return jsonify(
                access_token=secrets.token_urlsafe(16),
                token_type="Bearer",
                expires_in=300,
                id_token=self._id_token(asked["client_id"], asked.get("nonce", "")),
            )

        return app

    def sign_in(self, authorize_url: str) -> str:
        """What a person's browser does at the provider: open the page, press the button.
        Returns the address the provider sends them back to."""
        client = self.app.test_client()
        path = authorize_url.removeprefix(self.url)
        page = client.get(path)
        assert page.status_code == 200, page.get_data(as_text=True)
        ticket = page.get_data(as_text=True).split('name="ticket" value="')[1].split('"')[0]
        answer = client.post("/authorize", data={"ticket": ticket})
        assert answer.status_code == 302
        return str(answer.headers["Location"])
