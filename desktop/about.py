"""About Exo Bridge: the version, where its files are, the local endpoint; and Open log."""

from __future__ import annotations

import html
from importlib import metadata
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

from desktop.icons import APP_NAME, app_icon

DISTRIBUTION = "exo-bridge"


def app_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def about_html(endpoint_url: str | None, config_file: Path | None, log_file: Path | None) -> str:
    rows = [("Version", app_version()),
            ("Local endpoint", endpoint_url or "off"),
            ("Config file", str(config_file) if config_file else "the default"),
            ("Log", str(log_file) if log_file else "none")]
    cells = "".join(f"<tr><td><b>{html.escape(name)}</b>&nbsp;</td><td>{html.escape(value)}</td>"
                    "</tr>" for name, value in rows)
    return (f"<p><b>{APP_NAME}</b> sends each chat request to your exo cluster first (free), then "
            "to OpenRouter, then Hugging Face, and records every cent.</p>"
            f"<table>{cells}</table>"
            "<p>Headless commands: <code style='white-space:nowrap'>exo-bridge --help-commands"
            "</code></p>")


def show_about(parent: QWidget | None, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.NoIcon, f"About {APP_NAME}", text,
                      QMessageBox.StandardButton.Close, parent)
    box.setIconPixmap(app_icon().pixmap(64, 64))
    box.setWindowIcon(app_icon())
    box.setTextFormat(Qt.TextFormat.RichText)
    box.open()  # not modal to the app: the tray keeps working
    return box


def open_log(log_file: Path) -> str | None:
    """Open the log in the desktop's viewer (its folder when there is no log yet); the reason
    when there is neither."""
    target = log_file if log_file.is_file() else log_file.parent
    if not target.exists():
        return f"No log yet: {log_file} is written once Exo Bridge has something to record."
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(target))):
        return f"No program here opens {target}; open it by hand."
    return None
