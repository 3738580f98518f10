"""app.xlibs: the missing X libraries are named with their packages before Qt would abort."""

from __future__ import annotations

import pytest

from app import xlibs
from app.main import main

FAKE = "libstylesteer-fake-xcb.so.9"


def test_a_missing_library_is_named_with_its_packages():
    libraries = {"libc.so.6": ("libc6", "glibc"), FAKE: ("libfake-xcb9", "fake-xcb-util")}
    message = xlibs.missing_message({"DISPLAY": ":0"}, libraries)
    assert message is not None
    assert FAKE in message and "libc.so.6" not in message
    assert "sudo apt install libfake-xcb9" in message
    assert "sudo dnf install fake-xcb-util" in message


def test_nothing_is_said_when_every_library_loads():
    assert xlibs.missing_message({"DISPLAY": ":0"}, {"libc.so.6": ("libc6", "glibc")}) is None


@pytest.mark.parametrize(("env", "xcb"), [
    ({}, True),
    ({"QT_QPA_PLATFORM": "xcb"}, True),
    ({"QT_QPA_PLATFORM": "offscreen"}, False),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, False),
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, False),
])
def test_only_the_xcb_platform_is_checked(env, xcb, monkeypatch):
    monkeypatch.setattr(xlibs.sys, "platform", "linux")
    assert xlibs.uses_xcb(env) is xcb
    assert (xlibs.missing_message(env, {FAKE: ("a", "b")}) is not None) is xcb


def test_the_gui_command_stops_with_the_message_instead_of_qts_abort(monkeypatch, capsys):
    monkeypatch.setattr(xlibs.sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setitem(xlibs.XCB_LIBRARIES, FAKE, ("libfake-xcb9", "fake-xcb-util"))
    assert main(["gui"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stylesteer: error: the X11 libraries")
    assert "libfake-xcb9" in err and err.count("\n") == 1
