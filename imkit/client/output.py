"""Standard output for the commands: every line goes through :func:`write_line`.

A failed write must not end in a traceback. It is raised as an
:class:`~imkit.errors.OutputError` (the command exits 4), or as an
:class:`~imkit.errors.OutputClosed` when the reader has gone (EPIPE), which ends the
command quietly with 141, as a tool killed by SIGPIPE would. Python ignores SIGPIPE
(its sockets rely on that), so the error is caught rather than the signal restored.
"""

from __future__ import annotations

import errno
import os
import sys

from imkit.errors import OutputClosed, OutputError

# 128 + SIGPIPE: the status a shell shows for a tool that SIGPIPE killed.
EXIT_BROKEN_PIPE = 141


def write_line(text: str) -> None:
    """Print ``text`` and a newline on standard output, now (scripts read it live)."""
    # Looked up at each call: imkit chat's terminal mode replaces sys.stdout.
    stream = sys.stdout
    try:
        if stream is None:  # started with standard output closed (>&-)
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        stream.write(text + "\n")
        stream.flush()
    except OSError as error:
        raise _output_error(error) from None


def _output_error(error: OSError) -> OutputError:
    """The imkit error for a failed write to standard output."""
    if error.errno == errno.EPIPE:
        return OutputClosed("standard output was closed")
    reason = os.strerror(error.errno) if error.errno else str(error)
    return OutputError(f"cannot write to standard output: {reason}")


def discard_output() -> None:
    """Point standard output at /dev/null after a failed write.

    What could not be written is still buffered, and the interpreter's final flush
    would report it as "Exception ignored ..." on stderr.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    if devnull != 1:  # 1 if standard output was closed: then it now is /dev/null
        os.dup2(devnull, 1)
        os.close(devnull)


def printable(text: str) -> str:
    """``text`` with control characters replaced, so nobody can drive our terminal
    (text that others wrote: messages, names, topics)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else "\N{REPLACEMENT CHARACTER}" for c in text)
