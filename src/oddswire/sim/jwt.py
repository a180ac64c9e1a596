"""HS256 JWTs for the simulators: enough to exercise the auth paths of the clients (good,
bad-signature, expired and missing-claim tokens), not for production."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["TokenError", "TokenSigner"]


class TokenError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TokenSigner:
    """HS256 JWTs with a shared secret: enough to exercise the auth paths, not for prod."""

    secret: bytes

    def sign(self, claims: dict[str, Any]) -> str:
        head = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
        body = _b64(orjson.dumps(claims))
        mac = hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(mac)}"

    def user(self, login: int, **extra: Any) -> str:
        return self.sign({"session_type": "SESSION_USER", "login": login, **extra})

    def customer(self, customer_id: int, **extra: Any) -> str:
        return self.sign({"session_type": "SESSION_CUSTOMER", "customer_id": customer_id,
                          **extra})

    def verify(self, token: Any) -> dict[str, Any]:
        if not isinstance(token, str) or token.count(".") != 2:
            raise TokenError("not a JWT")
        head, body, mac = token.split(".")
        want = hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        try:
            ok = hmac.compare_digest(_unb64(mac), want)
            header, claims = orjson.loads(_unb64(head)), orjson.loads(_unb64(body))
        except (ValueError, orjson.JSONDecodeError) as e:
            raise TokenError("undecodable token") from e
        if not ok or not isinstance(header, dict) or header.get("alg") != "HS256":
            raise TokenError("bad signature")
        if not isinstance(claims, dict):
            raise TokenError("claims are not an object")
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, int | float) or exp < time.time()):
            raise TokenError("expired")
        return claims
