"""R2.1, R2.5: each observer profile's own log file, at the profile's log level."""
import logging
from logging.handlers import WatchedFileHandler

from observers.models import LogLevel, ObserverProfile

# R2.1 log levels mapped onto Python's: Status shows only start/stop and totals.
_PY_LEVELS = {
    LogLevel.STATUS: logging.WARNING + 5,
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.INFO: logging.INFO,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.SETUP: logging.DEBUG - 5,
}
STATUS = _PY_LEVELS[LogLevel.STATUS]
logging.addLevelName(STATUS, "STATUS")


def profile_logger(profile: ObserverProfile) -> logging.Logger:
    """R2.5: each profile writes its own log, <logs>/observer/<profile>.log."""
    logger = logging.getLogger(f"tariscope.observer.{profile.name}")
    path = profile.log_path
    if not any(getattr(h, "baseFilename", None) == str(path) for h in logger.handlers):
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = WatchedFileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(_PY_LEVELS[profile.log_level])
    return logger
