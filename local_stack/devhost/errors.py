"""The development host's one error, and how it reports the errors of the app's functions."""

from __future__ import annotations

import asyncio
import os
import traceback


class DevHostError(Exception):
    """A configuration problem: the development host refuses to start."""


def describe(error: BaseException) -> str:
    """The error's type and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


_HIDDEN_FRAMES = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(asyncio.__file__) + os.sep,
)


def format_traceback(error: BaseException) -> str:
    """The error's traceback without the host's and asyncio's own leading frames."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_HIDDEN_FRAMES):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb)).rstrip()
