"""One module per data source type (R2.2).

A source is a class built with keyword arguments

    Source(name=profile_name, settings=profile.settings, deliver=deliver, log=logger,
           notify=notify)

- `settings`: the profile's source keys (docs/config.md), e.g. {"port": 1813, "secret": …},
  which the class declares in `SETTINGS` (observers/sources/keys.py);
- `deliver(data: bytes, source_name: str)`: archives `data` durably (and, for a file
  source, hands it on for processing; for a stream the profile's journal,
  observers/journal.py, hands it on later); when it returns, the bytes are safe (a source
  may then acknowledge, delete a remote file, answer a RADIUS packet); when it raises,
  nothing was taken;
- `log`: the profile's logger (R2.5);
- `notify(event: str, **params)`: "connected" / "disconnected" of the data source (R9.2),

and run with `source.run(stop)`, which blocks until the threading.Event `stop` is set,
surviving bad input, peers that disappear and servers that restart (it retries with
back-off), and returns promptly after `stop` is set. `source.ready` (a threading.Event) is
set once it listens or is connected, so tests and the runner know when it serves.
"""
import importlib

# Source type -> "module:Class"; the folder source is run by the runner itself.
SOURCE_CLASSES = {
    "tcp_server": "observers.sources.tcp:TcpServerSource",
    "tcp_client": "observers.sources.tcp:TcpClientSource",
    "ftp_server": "observers.sources.ftp:FtpServerSource",
    "ftp_client": "observers.sources.ftp:FtpClientSource",
    "radius": "observers.sources.radius:RadiusSource",
}


def source_class(source_type: str):
    """The class that runs a source type (imported on first use)."""
    module_name, class_name = SOURCE_CLASSES[source_type].split(":")
    return getattr(importlib.import_module(module_name), class_name)
