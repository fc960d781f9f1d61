"""One instance per user: a second launch asks the first to come forward, then exits."""

from __future__ import annotations

import getpass

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket


def server_name() -> str:
    return f"exo-bridge-{getpass.getuser()}"


class SingleInstance(QObject):
    activated = Signal()  # another launch asked us to come forward

    def __init__(self, name: str | None = None):
        super().__init__()
        self.name = name or server_name()
        self._server: QLocalServer | None = None

    def forward_to_running(self, timeout_ms: int = 500) -> bool:
        """True if an instance is running (and was asked to come forward)."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(timeout_ms):
            return False
        socket.write(b"show\n")
        socket.waitForBytesWritten(timeout_ms)
        socket.disconnectFromServer()
        return True

    def listen(self) -> bool:
        self._server = QLocalServer(self)
        QLocalServer.removeServer(self.name)  # a stale socket of a crashed instance
        self._server.newConnection.connect(self._on_connection)
        return self._server.listen(self.name)

    def _on_connection(self) -> None:
        assert self._server is not None
        while (socket := self._server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._on_message(s))

    def _on_message(self, socket: QLocalSocket) -> None:
        if bytes(socket.readAll().data()).strip() == b"show":
            self.activated.emit()
        socket.disconnectFromServer()
