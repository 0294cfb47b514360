"""Failed logins, counted per account and per client address: `POST /api/auth` (R10.2) and
the web login both use them. Every failed attempt costs a full password hash, so a guesser
is stopped after a few, whichever user names it tries and whatever X-Forwarded-For it
sends. Successful logins are not counted; while an account or an address is over its
limit, even the right password is refused, so that a guess cannot be confirmed.

The client address is REMOTE_ADDR, or, with `BEHIND_PROXY`, the address the last of
`PROXY_COUNT` proxies saw (X-Forwarded-For read from the right): a client cannot choose it
by sending the header itself (docs/config.md)."""
import hashlib
import time

from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def client_address(request) -> str:
    """The address failed logins are counted for: DRF's own reading of it (NUM_PROXIES,
    which settings.py derives from BEHIND_PROXY and PROXY_COUNT), for the web login too."""
    return BaseThrottle().get_ident(request)


def rate_parse(rate: str) -> tuple[int, int]:
    """`10/min` -> (10, 60): how many in how many seconds (DRF's notation: s, m, h, d)."""
    count, _, period = rate.partition("/")
    try:
        return int(count), _PERIODS[period.strip()[:1]]
    except (ValueError, KeyError):
        raise ValueError(f"{rate!r} is not a rate such as 10/min") from None


class FailedLogins:
    """The failed logins of one door (`scope`: "api", "web") within the rate's period."""

    def __init__(self, scope: str, rate: str):
        self.scope = scope
        self.limit, self.seconds = rate_parse(rate)

    def _keys(self, username: str, address: str) -> list[str]:
        # Hashed: a user name may hold anything, and cache keys may not.
        account = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
        return [f"failed-logins:{self.scope}:address:{address}",
                f"failed-logins:{self.scope}:account:{account}"]

    def _recent(self, key: str, now: float) -> list[float]:
        return [at for at in cache.get(key, []) if at > now - self.seconds]

    def retry_after(self, *, username: str, address: str) -> int | None:
        """Seconds until a login may be tried again, or None when it may now."""
        now = time.time()
        waits = []
        for key in self._keys(username, address):
            recent = self._recent(key, now)
            if len(recent) >= self.limit:
                waits.append(int(recent[-self.limit] + self.seconds - now) + 1)
        return max(waits) if waits else None

    def failed(self, *, username: str, address: str) -> None:
        """Count a failed login of `username` from `address`."""
        now = time.time()
        for key in self._keys(username, address):
            cache.set(key, [*self._recent(key, now), now][-self.limit:], self.seconds)
