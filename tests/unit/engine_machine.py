"""A base for Hypothesis state machines over a fresh engine on a real file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis.stateful import RuleBasedStateMachine

from dropsvc import Engine


class EngineMachine(RuleBasedStateMachine):
    """``self.engine`` on a new file in a temporary folder; at the end, SPEC 3's invariant holds and
    the engine and folder are gone."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.engine = Engine(Path(self.folder.name) / name, readers=2)

    def teardown(self) -> None:
        try:
            assert self.engine.check() == []
        finally:
            self.engine.close()
            self.folder.cleanup()
