"""Whole-run guard: no log record of the entire test session may contain an sk-/mk- key.

Imported into tests/conftest.py, so it watches every test: a handler on the root logger
sees every record that any logger emits (plus DEBUG wherever a test turns it on), and the
session fails at teardown naming the records that carried key material.
"""

import logging
import re

import pytest

KEY_MATERIAL = re.compile(r"(?<![A-Za-z0-9])(?:sk|mk)-[A-Za-z0-9_-]{40,}")


class KeyLeakHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []
        self._formatter = logging.Formatter()

    def emit(self, record):
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + self._formatter.formatException(record.exc_info)
        except Exception:  # a broken log call is not this guard's business
            return
        match = KEY_MATERIAL.search(text)
        if match:
            self.leaks.append(
                f"{record.name} {record.levelname}: …{text[max(0, match.start() - 60) : match.start()]}"
            )


@pytest.fixture(scope="session", autouse=True)
def no_key_material_in_logs():
    handler = KeyLeakHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    assert not handler.leaks, "key material was logged during the test run:\n" + "\n".join(handler.leaks[:20])
