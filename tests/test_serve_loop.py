"""The served app's event loop: a write to a page that has just closed is not an error with a traceback."""
import asyncio
import logging

from tornado.websocket import WebSocketClosedError

from fraud_app.ui.app import closed_pages_quiet


def test_a_write_to_a_closed_page_is_quiet_and_other_task_errors_still_show(caplog):
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.DEBUG):
            closed_pages_quiet(loop, {"message": "Task exception was never retrieved",
                                       "exception": WebSocketClosedError()})
            assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
            closed_pages_quiet(loop, {"message": "Task exception was never retrieved",
                                       "exception": ValueError("a real bug")})
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "never retrieved" in errors[0].getMessage()
    finally:
        loop.close()
