"""irctest's own ngircd controller, recording the pid of each ngircd it starts, so that
tests/irc/run_irctest.py --ngircd stops those that irctest leaves running (as it does
imkit's: irctest_controller.record_pid). Run from irctest's folder with
PYTHONPATH=tests/irc, like irctest_controller."""

from __future__ import annotations

from typing import Any

from irctest.controllers.ngircd import NgircdController
from irctest_controller import record_pid


class RecordedNgircd(NgircdController):
    def run(self, *args: Any, **kwargs: Any) -> None:
        super().run(*args, **kwargs)
        if self.proc is not None:
            record_pid(self.proc.pid)


def get_irctest_controller_class() -> type[NgircdController]:
    return RecordedNgircd
