"""The unit tier is pure: no processes, sockets, SQLite or Docker. Files a test writes itself
under `tmp_path` are allowed (configuration files, checkouts). This guard makes any other I/O
fail the test at once instead of passing slowly."""

from __future__ import annotations

import socket
import sqlite3
import subprocess

import pytest


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"unit tests must not {what}; move the test to tests/integration")

    return refuse


@pytest.fixture(autouse=True)
def no_io(monkeypatch):
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("start processes"))
    monkeypatch.setattr(socket.socket, "connect", _refuse("open network connections"))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse("open network connections"))
    monkeypatch.setattr(socket.socket, "bind", _refuse("listen on sockets"))
    monkeypatch.setattr(sqlite3, "connect", _refuse("open SQLite databases"))
