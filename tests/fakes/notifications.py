"""A fake org.freedesktop.Notifications service (what dunst or a desktop shell answers), on a
private D-Bus session bus started for the test."""
# no `from __future__ import annotations`: dbus-fast reads the signatures from the annotations

import os
import subprocess

from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method, signal


class FakeNotifications(ServiceInterface):
    def __init__(self):
        super().__init__("org.freedesktop.Notifications")
        self.received = []
        self.icons = []  # each notification's app_icon: a file URI or an icon theme's name
        self.actions = []  # each notification's actions: [key, label, key, label, ...]

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s", body: "s",
               actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":
        self.received.append((app_name, summary, body))
        self.icons.append(app_icon)
        self.actions.append(list(actions))
        return len(self.received)

    @method()
    def GetCapabilities(self) -> "as":
        return ["body", "actions"]

    @signal()
    def ActionInvoked(self, nid: "u", action_key: "s") -> "us":
        """The user pressed a notification's button (the daemon sends this signal)."""
        return [nid, action_key]

    def press(self, label):
        """Press the button labelled ``label`` on the latest notification that has one."""
        for nid in range(len(self.actions), 0, -1):
            pairs = self.actions[nid - 1]
            for key, text in zip(pairs[::2], pairs[1::2], strict=False):
                if text == label:
                    self.ActionInvoked(nid, key)
                    return
        raise AssertionError(f"no button {label!r} in {self.actions}")

    @method()
    def GetServerInformation(self) -> "ssss":
        return ["fake", "exo-bridge tests", "1", "1.2"]

    @method()
    def CloseNotification(self, notification_id: "u"):
        return None


def start_session_bus():
    """(process, address) of a private dbus-daemon session bus."""
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                            stdout=subprocess.PIPE, text=True)
    address = proc.stdout.readline().strip()
    return proc, address


async def serve_fake(address):
    bus = await MessageBus(bus_address=address).connect()
    service = FakeNotifications()
    bus.export("/org/freedesktop/Notifications", service)
    await bus.request_name("org.freedesktop.Notifications")
    return bus, service


def bus_env(address):
    return {**os.environ, "DBUS_SESSION_BUS_ADDRESS": address}
