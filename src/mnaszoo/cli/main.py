"""The ``mnaszoo`` command: the parser, logging and the mapping of errors to one line.

Each command lives in its own module of this package (huggingface_hub's ``commands/`` pattern):
``NAME``, ``HELP``, ``DESCRIPTION``, ``add_arguments(parser)`` and ``run(args)``.

Exit status: 0 on success, 1 on an error (one line ``mnaszoo: error: ...`` on stderr;
``--debug`` adds the traceback), 2 on a usage error. See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterator, Sequence

from .._version import __version__
from ..errors import (
    DownloadError,
    MnaszooError,
    WeightsNotCachedError,
)
from . import (
    bench,
    download,
    evaluate,
    export,
    info,
    latency_kit,
    listing,
    predict,
    search,
    train,
    verify,
)
from ._options import DEFAULT_MODEL

__all__ = ["COMMANDS", "build_parser", "main"]

# Each command module has NAME, HELP, DESCRIPTION, add_arguments(parser) and run(args); --help
# lists them in this order.
COMMANDS = (
    listing,
    info,
    predict,
    download,
    verify,
    evaluate,
    export,
    bench,
    search,
    latency_kit,
    train,
)

PROG = "mnaszoo"

_EPILOG = """\
examples:
  mnaszoo list                       models, parameters, MACs and published weights
  mnaszoo info mnasnet_b1            per-stage table and the weights' provenance
  mnaszoo predict photo.jpg          top-5 ImageNet classes (mnasnet_a1's default weights)
  mnaszoo download --all             fill the cache for offline use
  mnaszoo verify mnasnet_a1          re-check the cached weights' sha256
  mnaszoo evaluate imagenet/val --model mnasnet_b1 --weights tv_in1k
  mnaszoo export mnasnet_a1 a1.pte --format executorch   an on-device program (mnaszoo[edge])
  mnaszoo search runs/search --budget 30   architecture search on digits (needs mnaszoo[examples])
  mnaszoo search runs/mine --data photos/ --finalize 1   search on your images, train the best
  mnaszoo latency-kit kit/           blocks + runner to measure latency on your device
  mnaszoo train photos/ runs/photos  fine-tune mnasnet_a1 on your images (one folder per class)

Exit status: 0 success, 1 error (one line on stderr; --debug shows the traceback), 2 usage.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mnaszoo`` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and debug logging",
    )
    common.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only warnings and errors on stderr, no progress bars",
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The MnasNet family for PyTorch: models, verified pretrained weights,"
        " prediction and evaluation.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(
            command.NAME, parents=[common], help=command.HELP, description=command.DESCRIPTION
        )
        command.add_arguments(sub)
        sub.set_defaults(run=command.run, subparser=sub)
    return parser


# ----------------------------------------------------------------------------- main


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        text = f"{PROG}: {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


@contextlib.contextmanager
def _logging(level: int, progress: bool) -> Iterator[None]:
    logger = logging.getLogger("mnaszoo")
    # huggingface_hub logs every retry of an unreachable Hub as a warning; mnaszoo's own lines
    # ("Downloading ...", the final one-line error) say what matters, so keep hf's for --debug.
    # huggingface_hub sets its level when first imported (from HF_HUB_VERBOSITY), so set both.
    hf_logger = logging.getLogger("huggingface_hub")
    hf_level = hf_logger.level
    if level > logging.DEBUG:
        os.environ.setdefault("HF_HUB_VERBOSITY", "error")
        hf_logger.setLevel(logging.ERROR)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        if progress:
            yield
        else:  # also huggingface_hub's bars (Hub downloads); restored on exit
            bars = importlib.import_module("huggingface_hub.utils.tqdm")
            with bars.disable_progress_bars():
                yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        hf_logger.setLevel(hf_level)


def _download_target(args: argparse.Namespace | None) -> str:
    """What ``mnaszoo download`` should fetch for the failed command."""
    model: str | None = getattr(args, "model", None)
    weights: str | None = getattr(args, "weights", None)
    names: list[str] = list(getattr(args, "names", None) or [])
    if weights is not None:
        return weights if "." in weights else f"{model or DEFAULT_MODEL}.{weights}"
    return model or " ".join(names) or DEFAULT_MODEL


# The library's keyword arguments, as the command line spells them.
_CLI_WORDS = (
    ("pass checkpoint= a local file", "pass --checkpoint a local file"),
    ("checkpoint=", "--checkpoint"),
    ("cache_dir= / ", "--cache-dir / "),
    ("pass cache_dir= a writable folder", "pass --cache-dir a writable folder"),
    ("Pass cache_dir= a writable directory", "Pass --cache-dir a writable directory"),
    ("cache_dir=", "--cache-dir"),
    ("force_download=True", "--force"),
    ("Pass token= or set HF_TOKEN", "Set HF_TOKEN"),
    ("download_timeout= or ", ""),
    ("input_size must", "--input-size must"),
    ("topk must", "--topk must"),
    ("batch_size must", "--batch-size must"),
)


def _error_line(error: BaseException, args: argparse.Namespace | None) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    # The library's advice, in command-line terms.
    line = re.sub(
        r"these weights fit '(\w+)': create that model",
        r"these weights fit '\1': pass --model \1",
        line,
    )
    for api, cli in _CLI_WORDS:
        line = line.replace(api, cli)
    if isinstance(error, (WeightsNotCachedError, DownloadError)):
        target = _download_target(args)
        line = line.replace("`mnaszoo download <model>`", f"`mnaszoo download {target}`")
        line = line.replace(" (or `mnaszoo.create(name, pretrained=True)`)", "")
        if "--checkpoint" not in line:
            line += " Or pass --checkpoint a local weights file."
        if "mnaszoo download" not in line:
            line += (
                f" To fill the cache, run `mnaszoo download {target}` on a machine with network"
                " access and copy the cache here."
            )
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mnaszoo`` command with ``argv`` (default ``sys.argv[1:]``); return the exit
    status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version (0) and usage errors (2)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    debug = bool(getattr(args, "debug", False))
    quiet = bool(getattr(args, "quiet", False))
    args.debug, args.quiet = debug, quiet
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    try:
        with _logging(level, progress=not quiet):
            return int(args.run(args))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    except BrokenPipeError:
        # The reader went away (`mnaszoo list | head`): stop quietly.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (MnaszooError, OSError, KeyboardInterrupt) as error:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: {_error_line(error, args)}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug, or a failure deep in torch: still one line
        if debug:
            traceback.print_exc()
        line = _error_line(error, args)
        print(
            f"{PROG}: error: {type(error).__name__}: {line} (run with --debug for the"
            " traceback, and report it if it looks like a bug)",
            file=sys.stderr,
        )
        return 1
