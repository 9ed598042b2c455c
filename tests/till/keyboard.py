"""A scripted keyboard for an interactive program: type lines into its stdin pipe, wait for what it prints.

Waiting is on a condition with a deadline (the reader thread signals every chunk of output), never a sleep."""

from __future__ import annotations

import codecs
import os
import subprocess
import threading
from collections.abc import Sequence


class ScriptedKeyboard:
    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        self._output = ""
        self._cursor = 0
        self._closed = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="screen-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")()
        fd = self.process.stdout.fileno()
        while chunk := os.read(fd, 4096):
            with self._changed:
                self._output += decoder.decode(chunk)
                self._changed.notify_all()
        with self._changed:
            self._output += decoder.decode(b"", final=True)
            self._closed = True
            self._changed.notify_all()

    @property
    def transcript(self) -> str:
        with self._changed:
            return self._output

    def expect(self, text: str, timeout: float = 30.0) -> str:
        """Wait until `text` appears after what was already read; return everything up to and including it."""
        with self._changed:
            found = self._changed.wait_for(lambda: text in self._output[self._cursor :] or self._closed, timeout)
            start = self._output.find(text, self._cursor)
            if not found or start < 0:
                raise AssertionError(f"never printed {text!r}; the screen so far:\n{self._output}")
            end = start + len(text)
            seen, self._cursor = self._output[self._cursor : end], end
            return seen

    def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 30.0) -> int:
        """Close the keyboard (end of input) and wait for the program to end; its exit code."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
