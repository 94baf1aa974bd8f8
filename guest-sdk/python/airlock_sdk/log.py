"""Leveled lines for the run's log. The host masks secrets in them."""

from ._host import imports


def _log(level_name, message):
    wit = imports().log
    wit.log(getattr(wit.Level, level_name), str(message))


def trace(message):
    _log("TRACE", message)


def debug(message):
    _log("DEBUG", message)


def info(message):
    _log("INFO", message)


def warn(message):
    _log("WARN", message)


def error(message):
    _log("ERROR", message)
