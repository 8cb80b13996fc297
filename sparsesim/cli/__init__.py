"""The command line: `parser` holds the grammar, `commands` one function per command. Errors of the
stages print as one line, options named by the flags the user typed, never a traceback."""
from __future__ import annotations

import os
import sys
from typing import Sequence

from ..errors import OptionError, SparsesimError
from . import commands
from .commands import EXIT_ERROR, EXIT_INTERRUPTED
from .parser import build_parser, command_of, flag_for

__all__ = ["build_parser", "main", "run"]


def one_line(message: str) -> str:
    """Errors print as one line: a parser's message quoting the damaged text may hold newlines."""
    return " ".join(message.split())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = command_of(argv)
    parser = build_parser(command)
    try:
        args = parser.parse_args(argv)
        return getattr(commands, args.command)(args)
    except OptionError as e:
        print(one_line(f"error: {e.render(lambda field: flag_for(parser, command, field))}"), file=sys.stderr)
        return EXIT_ERROR
    except SparsesimError as e:
        print(one_line(f"error: {e}"), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:   # an input asking for more than the machine has (a size no real layer has)
        print("error: out of memory: the input asks for more memory than this machine has", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:  # disk full, permissions: name the file, skip the traceback
        print(one_line(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": ")), file=sys.stderr)
        return EXIT_ERROR


def run() -> None:
    """The `sparsesim` executable: `main`, then leave without the interpreter's teardown. pyarrow's
    parquet threads can abort a finishing process ("terminate called without an active exception",
    apache/arrow#34314): after the one-line error and exit 2 came a second line and SIGABRT, now and then
    (seen once in a test run). Every file is written and closed by now, so nothing is lost; a Ray runtime
    this process started still gets its shutdown hooks (a normal exit)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    ray = sys.modules.get("ray")
    if ray is not None and getattr(ray, "is_initialized", lambda: False)():
        sys.exit(code)
    os._exit(code)
