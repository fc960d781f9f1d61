"""Desktop notifications, debounced: a flapping provider gives at most one notification per
provider per minute, then one summary. A provider going offline and coming back is said when it
happens ("exo went offline", "exo is back"), each change once (a failover and "went offline" are
one change), and a storm of them (more than three a minute) becomes one note of where it ended.
Sent through the desktop's notification service over D-Bus (org.freedesktop.Notifications)
where there is one, else as a tray balloon. The icon and tooltip always show the state too,
since notifications can silently vanish.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.icons import APP_ICON_NAME, APP_NAME, app_icon_path
from router import (
    NOTIFICATION_KINDS,
    AccountLimited,
    BillDrift,
    BudgetAlert,
    BudgetLevel,
    ClusterProblem,
    CostAnomaly,
    CreditAlert,
    CreditLevel,
    CreditWall,
    Failover,
    HealthChanged,
    HealthState,
    LedgerProblem,
    LimitCause,
    ModelWarming,
    NodeChanged,
    Outcome,
    Role,
    Stage,
    UsageInvalid,
    usd,
)

KINDS = NOTIFICATION_KINDS

WINDOW_S = 60.0
STORM = 3  # changes of one provider's reachability said within the window; more are held


@dataclass(frozen=True, slots=True)
class Note:
    kind: str  # one of KINDS
    key: str  # what it is about (a provider id): the debounce is per key
    title: str
    body: str
    action: str = ""  # a button's label; pressed, the tray does ``act`` on ``model``
    act: str = ""  # desktop.cluster_model.Act: warm | reload
    model: str = ""
    # a change of the provider's reachability, said once each: "down", "up" (it answers, no
    # model ready), "free" (requests go to it again)
    state: str = ""


@dataclass
class Debouncer:
    """Decides what reaches the user. ``offer`` a note; ``due_summaries`` after the window."""

    clock: Callable[[], float] = time.monotonic
    window_s: float = WINDOW_S
    enabled: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(KINDS, True))
    _last: dict[str, float] = field(default_factory=dict)
    _held: dict[str, list[Note]] = field(default_factory=dict)
    _said: dict[str, str] = field(default_factory=dict)  # key -> the state last said
    _said_at: dict[str, list[float]] = field(default_factory=dict)  # key -> when states were said
    _storm: dict[str, Note] = field(default_factory=dict)  # key -> the latest change held back

    def offer(self, note: Note) -> bool:
        """True when this note should be shown now."""
        if not self.enabled.get(note.kind, True):
            return False
        now = self.clock()
        if note.state:
            return self._offer_state(note, now)
        last = self._last.get(note.key)
        if last is not None and now - last < self.window_s:
            self._held.setdefault(note.key, []).append(note)
            return False
        self._last[note.key] = now
        return True

    def _offer_state(self, note: Note, now: float) -> bool:
        """A change of reachability: said at once, unless it is what was said last within the
        window (a failover after "went offline", or the reverse), or beyond ``STORM`` within
        the window (then the latest is said when the window has passed, if it differs from what
        was said)."""
        key = note.key
        said_at = [t for t in self._said_at.get(key, []) if now - t < self.window_s]
        self._said_at[key] = said_at
        if note.state == self._said.get(key) and key not in self._storm and said_at:
            return False
        if len(said_at) >= STORM:
            self._storm[key] = note
            return False
        said_at.append(now)
        self._said[key] = note.state
        return True

    def due_summaries(self) -> list[Note]:
        """One summary per key whose window has passed with notes held back."""
        now = self.clock()
        due = [*self._storm_ends(now)]
        for key, held in list(self._held.items()):
            if now - self._last.get(key, now) >= self.window_s:
                del self._held[key]
                self._last[key] = now
                latest = held[-1]
                if len(held) == 1:  # one note, held back a while: itself
                    due.append(latest)
                    continue
                due.append(Note(latest.kind, key, f"{latest.title} (and {len(held) - 1} more)",
                                f"{len(held)} changes in the last minute; now: {latest.body}"))
        return due

    def _storm_ends(self, now: float) -> list[Note]:
        """Where a storm of changes ended, once the window has passed: said only if it differs
        from what was said last."""
        due = []
        for key, latest in list(self._storm.items()):
            said_at = [t for t in self._said_at.get(key, []) if now - t < self.window_s]
            if len(said_at) >= STORM:
                continue
            del self._storm[key]
            if latest.state != self._said.get(key):
                self._said[key] = latest.state
                self._said_at[key] = [*said_at, now]
                due.append(Note(latest.kind, key, latest.title,
                                f"{latest.body} It went offline and came back several times in "
                                "the last minute.", state=latest.state))
        return due


def note_for(event: object, names: dict[str, str]) -> Note | None:
    """The notification a router event deserves, if any."""
    def name(provider: str) -> str:
        return names.get(provider, provider)

    for kind, describe in _NOTES:
        if isinstance(event, kind):
            return describe(event, name)
    return None


Name = Callable[[str], str]
_OFFLINE = (Outcome.REFUSED, Outcome.CIRCUIT_OPEN, Outcome.TIMEOUT)
# a failover for one of these says the provider is not answering (not: this model, this key)
_NOT_ANSWERING = (*_OFFLINE, Outcome.SERVER_ERROR, Outcome.STREAM_CUT, Outcome.BAD_RESPONSE)


def _failover(event: Failover, name: Name) -> Note:
    verb = "offline" if event.reason in _OFFLINE else str(event.reason)
    return Note("failover", event.from_provider,
                f"{name(event.from_provider)} {verb} — failing over to {name(event.to_provider)}",
                f"Requests now go to {name(event.to_provider)} (paid cloud usage is recorded).",
                state="down" if event.reason in _NOT_ANSWERING else "")


_UP = (HealthState.HEALTHY, HealthState.DEGRADED, HealthState.BUSY)


def _health(event: HealthChanged, name: Name) -> Note | None:
    local = event.role is Role.LOCAL
    if local and event.new_state is HealthState.DOWN and event.old_state in _UP:
        return Note("failover", event.provider, f"{name(event.provider)} went offline",
                    f"{_sentence(event.detail)}Requests go to your other providers meanwhile; "
                    "you will be told when it is back.", state="down")
    if local and event.new_state is HealthState.HEALTHY and (
            event.recovered or event.old_state is HealthState.DOWN):
        return Note("failback", event.provider,
                    f"{name(event.provider)} is back — requests are free again",
                    _sentence(event.detail).strip(), state="free")
    if local and event.old_state is HealthState.DOWN and event.new_state in _UP:
        return Note("failback", event.provider, f"{name(event.provider)} is back",
                    f"{_sentence(event.detail)}Requests go to it again once a model is ready.",
                    state="up")
    if event.new_state is HealthState.DOWN and event.invalid_key:
        return Note("invalid-key", event.provider, f"{name(event.provider)}: invalid API key",
                    f"Set a new key in Settings… or with `exo-bridge keys set {event.provider}`.")
    return None


def _sentence(detail: str) -> str:
    """A probe's detail as the start of a notification's body ("" when there is none)."""
    detail = detail.strip()
    if not detail:
        return ""
    return detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".") + " "


def _budget(event: BudgetAlert, name: Name) -> Note:
    title = (f"{name(event.provider)} budget exhausted" if event.level is BudgetLevel.EXHAUSTED
             else f"{name(event.provider)} budget at 80%")
    return Note("budget", event.provider, title, event.detail)


def _cost_anomaly(event: CostAnomaly, name: Name) -> Note:
    return Note("cost-anomaly", event.provider, f"{name(event.provider)} reported an odd cost",
                f"{usd(event.reported_usd)} billed where its price list says "
                f"{usd(event.expected_usd)}; recorded and flagged.")


def _usage_invalid(event: UsageInvalid, name: Name) -> Note:
    return Note("cost-anomaly", event.provider,
                f"{name(event.provider)} reported usage that cannot be true",
                "Our own estimate was recorded instead (flagged usage-invalid).")


def _ledger(event: LedgerProblem, name: Name) -> Note:
    if event.problem is None:
        return Note("ledger", "ledger", "Usage ledger recording again", "Paid providers are back on.")
    return Note("ledger", "ledger", "Usage ledger cannot record — paid providers are off",
                event.problem)


def _warming(event: ModelWarming, name: Name) -> Note | None:
    key = f"warm:{event.model}:{event.stage}"  # an offer, then "ready" a minute later: both shown
    if event.stage is Stage.OFFERED:
        return Note("warm", key, f"Load {event.name} on exo?",
                    f"It fits ({event.detail}); the cloud answers until it is ready.",
                    action="Load on exo", act="warm", model=event.model)
    if event.stage is Stage.READY:
        return Note("warm", key, f"{event.name} is ready on exo — back to free",
                    f"Requests for {event.name} go to {name(event.provider)} again.")
    if event.stage is Stage.FAILED:
        return Note("warm", key, f"{event.name} cannot be loaded on exo", event.detail)
    return None


def _node(event: NodeChanged, name: Name) -> Note:
    if event.joined:
        return Note("cluster", f"node:{event.node}", f"{event.name} is back in the exo cluster",
                    f"{name(event.provider)} can use its memory again.")
    return Note("cluster", f"node:{event.node}", f"{event.name} dropped out of the exo cluster",
                "exo unloads the models that used it; requests for them go elsewhere meanwhile.")


def _problem(event: ClusterProblem, name: Name) -> Note | None:
    problem = event.problem
    if event.cleared:
        return None
    return Note("cluster", f"problem:{problem.model}", f"{problem.name} is stuck on exo",
                f"{problem.node_name}: {problem.reason}", action="Reload on exo", act="reload",
                model=problem.model)
_WALL_TITLES = {CreditWall.KEY_LIMIT: "key limit", CreditWall.CREDIT_FLOOR: "credit floor"}


def _credit(event: CreditAlert, name: Name) -> Note:
    """Warnings before the wall: the key's limit or the user's floor at 80% / 95% / reached,
    the day's free-model requests nearly gone / used up."""
    resets = f" It resets {event.resets_at:%Y-%m-%d %H:%M} UTC." if event.resets_at else ""
    if event.wall is CreditWall.FREE_REQUESTS:
        gone = event.level is CreditLevel.REACHED
        return Note("credit", f"{event.provider}:free", f"{name(event.provider)}: free-model "
                    f"requests {'used up' if gone else 'nearly gone'} for today",
                    f"{event.left:.0f} of {event.of:.0f} left.{resets}")
    wall = _WALL_TITLES[event.wall]
    title = (f"{name(event.provider)}: {wall} reached" if event.level is CreditLevel.REACHED
             else f"{name(event.provider)}: {event.level} of the {wall} used")
    return Note("credit", f"{event.provider}:credit", title,
                f"{usd(event.left, cents=True)} left of {usd(event.of, cents=True)}.{resets}")


def _limited(event: AccountLimited, name: Name) -> Note | None:
    if event.cause is LimitCause.IN_FLIGHT:  # settles by itself in seconds: the tray shows it
        return None
    return Note("credit", f"{event.provider}:credit", f"{name(event.provider)}: "
                f"{event.cause.meaning}", event.detail[:1].upper() + event.detail[1:] + ".")


def _drift(event: BillDrift, name: Name) -> Note:
    return Note("cost-anomaly", f"{event.provider}:bill", f"{name(event.provider)} billed "
                f"{usd(event.billed_usd)} on {event.day}, the ledger recorded "
                f"{usd(event.recorded_usd)}", "See the cost window or `exo-bridge usage "
                "--reconcile`; the key may be used elsewhere too.")


_NOTES: tuple[tuple[type[Any], Callable[[Any, Name], Note | None]], ...] = (
    (Failover, _failover), (HealthChanged, _health), (BudgetAlert, _budget),
    (CostAnomaly, _cost_anomaly), (UsageInvalid, _usage_invalid), (LedgerProblem, _ledger),
    (ModelWarming, _warming), (NodeChanged, _node), (ClusterProblem, _problem),
    (CreditAlert, _credit), (AccountLimited, _limited), (BillDrift, _drift))


class NativeNotifications:
    """The desktop's own notification service (org.freedesktop.Notifications over D-Bus,
    through desktop-notifier). ``available()`` is False where there is none, so the caller can
    fall back to the tray balloon instead of notifications vanishing into a log."""

    SERVICE = "org.freedesktop.Notifications"

    def __init__(self, app_name: str = APP_NAME, icon: Path | None = None):
        self.app_name = app_name
        self.icon = icon if icon is not None else app_icon_path()  # never the notifier's default
        self._notifier: object | None = None

    async def available(self) -> bool:
        import os

        if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            return False
        try:
            from dbus_fast import Message
            from dbus_fast.aio import MessageBus

            bus = await MessageBus().connect()
            try:
                reply = await bus.call(Message(
                    destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus", member="NameHasOwner", signature="s",
                    body=[self.SERVICE]))
            finally:
                bus.disconnect()
                with contextlib.suppress(Exception):  # its reader ends with EOF: expected
                    await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
        except Exception:  # no bus, refused, a broken address: no native notifications
            return False
        return bool(reply is not None and reply.body and reply.body[0])

    def app_icon(self) -> Any:
        """Our icon for the notification service (desktop-notifier's default is Python's logo):
        the file, else the icon theme's ``exo-bridge``."""
        from desktop_notifier import Icon

        return Icon(path=self.icon) if self.icon is not None else Icon(name=APP_ICON_NAME)

    async def close(self) -> None:
        """Leave the D-Bus connection the notifier opened, if it did (at quit: otherwise its
        reader's end-of-file is reported as an error nobody retrieved)."""
        bus = getattr(getattr(self._notifier, "_backend", None), "bus", None)
        if bus is not None and hasattr(bus, "wait_for_disconnect"):
            bus.disconnect()
            with contextlib.suppress(Exception):
                await bus.wait_for_disconnect()

    async def send(self, note: Note, on_action: Callable[[Note], None] | None = None) -> None:
        """Show the note; one with an action gets a button that calls ``on_action``."""
        from desktop_notifier import Button, DesktopNotifier

        if self._notifier is None:
            self._notifier = DesktopNotifier(app_name=self.app_name, app_icon=self.app_icon())
        buttons = [Button(note.action, on_pressed=lambda: on_action(note))] \
            if note.action and on_action is not None else []
        await self._notifier.send(title=note.title, message=note.body,  # type: ignore[attr-defined]
                                  buttons=buttons)
