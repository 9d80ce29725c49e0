"""A plain-text progress bar per broker, and the same state in a JSON file the ops page polls."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

BAR_WIDTH = 24


class Progress:
    def __init__(self, path: Path, *, run_id: str, brokers: list[str], out):
        self.path, self.out = path, out
        self.state = {"run_id": run_id, "pid": os.getpid(), "state": "running", "started": time.time(),
                      "brokers": {broker: {"done": 0, "total": 0, "step": "waiting"} for broker in brokers}}
        self._write()

    def step(self, broker: str, done: int, total: int, label: str) -> None:
        self.state["brokers"][broker] = {"done": done, "total": total, "step": label}
        filled = BAR_WIDTH * done // max(total, 1)
        self.out.write(f"{broker:<9} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done:>2}/{total}  {label}\n")
        self.out.flush()
        self._write()

    def finish(self, state: str, error: str = "") -> None:
        self.state.update(state=state, error=error, finished=time.time())
        self._write()

    def _write(self) -> None:
        # Written whole, then renamed: the page never reads half a file.
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.state))
        temporary.replace(self.path)
