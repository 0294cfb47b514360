"""A mail when a data source stays disconnected longer than a few minutes, and when it is back.

Bind it to three events of each observer profile to watch: "source_disconnected",
"source_connected", and "periodic" (an interval of a minute: 60 s). A PBX that drops its
connection and is back within DISCONNECTED_MINUTES causes no mail at all; one that stays
away causes one mail ("... disconnected since 14:02"), and one more when it connects again
("... connected again at 14:31, after 29 minutes").

A profile counts as disconnected when its last peer has gone: a TCP server with two PBXs
connected is disconnected only when both are. What the script knows it keeps in memory:
when the dispatcher is restarted during an outage, the outage is noticed again only at the
source's next disconnection.

Changing it: edit the constants just below.

  DISCONNECTED_MINUTES  how long a source must stay away before the mail (a whole number;
                        the check runs at each "periodic" event, so the mail leaves up to
                        one interval later)
  MAIL_TO               "" sends to the default address of the mail settings
                        (TARISCOPE_ALERT_EMAIL); or an address, "noc@example.com"
  SUBJECT               the subject of the mails; the profile's name is added
  ALERT_LEVEL           the level of the alert raised along with the mail ("warning",
                        "critical"), or None for a mail alone

Standard library only: the script reaches the system through `host` alone
(docs/scripts.md, "The host API").
"""
import datetime
import traceback

# ******************************************************************************************
DISCONNECTED_MINUTES = 5
MAIL_TO = ""
SUBJECT = "Data source disconnected"
ALERT_LEVEL = "warning"
# ******************************************************************************************


def moment(params) -> datetime.datetime:
    """When the event was raised (the host's `raised_at`, UTC), or now."""
    value = params.get("raised_at")
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    if value:
        parsed = datetime.datetime.fromisoformat(str(value))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
    return datetime.datetime.now(datetime.UTC)


def clock(at: datetime.datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


class Outage:
    """One profile's connection: the peers connected, since when it has none, and whether
    the mail about it went."""

    def __init__(self):
        self.peers: set[str] = set()
        self.away_since: datetime.datetime | None = None
        self.reported = False


class DisconnectNotifier:
    def init(self, host):
        self.host = host
        self.profiles: dict[str, Outage] = {}

    def main(self, params):
        try:
            profile = str(params.get("profile") or "")
            state = self.profiles.setdefault(profile, Outage())
            event, at = params.get("event"), moment(params)
            if event == "source_disconnected":
                state.peers.discard(str(params.get("peer") or ""))
                if not state.peers and state.away_since is None:
                    state.away_since = at
            elif event == "source_connected":
                state.peers.add(str(params.get("peer") or ""))
                self.back(profile, state, at, params.get("peer"))
            elif event == "periodic":
                self.check(profile, state, at)
        except Exception:
            self.host.log("Error running script: " + traceback.format_exc())

    def check(self, profile: str, state: Outage, now: datetime.datetime) -> None:
        if state.away_since is None or state.reported:
            return
        if now - state.away_since < datetime.timedelta(minutes=DISCONNECTED_MINUTES):
            return
        minutes = int((now - state.away_since).total_seconds() // 60)
        text = (f"The data source of observer profile {profile} has been disconnected since "
                f"{clock(state.away_since)} ({minutes} minutes). Calls made meanwhile are "
                "collected when it connects again, if the PBX keeps them.")
        self.host.send_mail(MAIL_TO, f"{SUBJECT}: {profile}", text)
        if ALERT_LEVEL:
            self.host.alert(ALERT_LEVEL, text)
        self.host.log(text)
        state.reported = True

    def back(self, profile: str, state: Outage, now: datetime.datetime, peer) -> None:
        if state.away_since is not None and state.reported:
            minutes = int((now - state.away_since).total_seconds() // 60)
            text = (f"The data source of observer profile {profile} is connected again at "
                    f"{clock(now)} ({peer or 'peer unknown'}), after {minutes} minutes away.")
            self.host.send_mail(MAIL_TO, f"Data source connected again: {profile}", text)
            self.host.log(text)
        state.away_since, state.reported = None, False
