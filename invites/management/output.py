"""What both invite-code commands print with: help as written, and log lines that step around the progress bar."""

import argparse
import logging
import sys

from django.core.management.base import DjangoHelpFormatter, OutputWrapper
from tqdm import tqdm


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's order of options, and the epilog as written."""


class _AroundTheBar(logging.StreamHandler[OutputWrapper]):
    def emit(self, record: logging.LogRecord) -> None:
        with tqdm.external_write_mode(file=sys.stderr):  # the bar is cleared, the line written, the bar redrawn
            super().emit(record)


def command_logger(name: str, stdout: OutputWrapper) -> logging.Logger:
    """The guide's ``time - LEVEL - message`` lines on the command's stdout only."""
    log, log.propagate = logging.getLogger(name), False
    log.handlers = [_AroundTheBar(stdout)]
    log.handlers[0].setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))
    log.setLevel(logging.INFO)
    return log
