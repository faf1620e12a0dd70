#!/usr/bin/python3
"""A loopback token server for the registry that uses bearer-token auth (as Docker Hub does).

GET /token?service=...&scope=repository:NAME:pull,push with HTTP basic auth of the test user
returns a JWT granting the requested actions; anonymous requests get a token granting nothing
(the registry then answers 401, like a private repository). Tokens are RS256-signed with the
openssl CLI and carry the certificate in ``x5c``, which the registry checks against its
``rootcertbundle``. Debian's python3 and openssl only: buildkit-up runs it on a fresh machine.

usage: token-server.py PORT STATE_DIR   (STATE_DIR holds user, password, token.key, token.crt)
"""

import base64
import hmac
import json
import secrets
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ISSUER = "envd-jupyter-token-server"
LIFETIME = 300


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Tokens:
    def __init__(self, state: Path):
        self.user = (state / "user").read_text().strip()
        self.password = (state / "password").read_text().strip()
        self.key = state / "token.key"
        der = subprocess.run(["openssl", "x509", "-in", str(state / "token.crt"), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = [base64.b64encode(der).decode()]

    def authenticated(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, self.user) and hmac.compare_digest(password, self.password)

    def issue(self, service: str, scopes: list[str], granted: bool) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if granted and kind == "repository" and name:
                access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        claims = {"iss": ISSUER, "sub": self.user if granted else "", "aud": service, "iat": now,
                  "nbf": now - 10, "exp": now + LIFETIME, "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), check=True, capture_output=True).stdout
        return f"{signing_input}.{b64url(signature)}"


class Handler(BaseHTTPRequestHandler):
    tokens: Tokens

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            self.send_error(404)
            return
        query = urllib.parse.parse_qs(url.query)
        header = self.headers.get("Authorization", "")
        if header and not self.tokens.authenticated(header):
            self.send_error(401, "wrong user or password")
            return
        token = self.tokens.issue(query.get("service", [""])[0], query.get("scope", []), granted=bool(header))
        body = json.dumps({"token": token, "access_token": token, "expires_in": LIFETIME,
                           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # no OAuth endpoint: clients fall back to GET with basic auth on 404
        self.send_error(404)

    def log_message(self, format, *args):  # the query holds no secrets; the Authorization header is never logged
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), format % args))


def main() -> None:
    port, state = int(sys.argv[1]), Path(sys.argv[2])
    Handler.tokens = Tokens(state)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
