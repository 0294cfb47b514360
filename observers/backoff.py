"""R2.2: sources survive servers that restart. Whatever a collector waits for after a
failure — a port still taken, a PBX or FTP server that is down, a database that is away,
the main server of a remote observer, a collector thread that died — it waits a delay that
doubles with each failure in a row, up to a cap, so that a long outage costs a retry every
few minutes and not a retry storm, while a short one is retried at once. Every such wait
is computed here; each caller keeps its own bounds. Pure: stdlib only.
"""
import random

# 2 ** 30 times the first delay is past any cap a caller uses; the exponent stops there so
# that a failure counted for days cannot overflow a float.
_MAX_EXPONENT = 30


def backoff(attempt: int, low: float, high: float, *, jitter: bool = False) -> float:
    """Seconds to wait before retry number `attempt` (0-based: 0 after the first failure):
    `low` doubled `attempt` times, never above `high`.

    `jitter` draws the delay from the upper half of that ceiling instead (never below
    `low`), so that many sources failing together (one database restarting under every
    TCP source) do not all retry in step; the first delay is `low` either way.
    """
    ceiling = min(high, low * 2 ** min(attempt, _MAX_EXPONENT))
    if not jitter:
        return ceiling
    return random.uniform(max(low, ceiling / 2), ceiling)
