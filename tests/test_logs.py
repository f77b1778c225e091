"""Log lines go to the stderr of the moment they are written."""

from __future__ import annotations

import io
import sys

import structlog

from fathom.logs import configure_logging


def test_a_closed_stream_from_configure_time_does_not_break_later_log_lines(capsys):
    earlier = io.StringIO()
    saved, sys.stderr = sys.stderr, earlier
    try:
        configure_logging("INFO", json_lines=True)
    finally:
        sys.stderr = saved
    earlier.close()  # e.g. a test's capture that ended
    structlog.get_logger("fathom.test").info("logs.after_close", n=1)
    assert '"logs.after_close"' in capsys.readouterr().err
