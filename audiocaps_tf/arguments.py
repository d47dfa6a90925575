"""argparse value types shared by the command lines: each rejects a bad value with a message naming it."""

import argparse


def positive_int(value):
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return number


def non_negative_int(value):
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return number


def positive_float(value):
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {value}")
    return number


def non_negative_float(value):
    number = float(value)
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {value}")
    return number


def port_number(value):
    """A TCP port, 0 (any free port) to 65535."""
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {value}")
    return port
