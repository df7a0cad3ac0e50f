"""Shared test set-up for tests/ and notebooks/ (nbval): no network, ever.

``HF_HUB_OFFLINE=1`` and ``TRANSFERLIB_OFFLINE=1`` are set before anything imports
transformers, and the Jupyter kernels that papermill and nbval start inherit them. In
this (pytest's) process, any socket connection to a non-loopback address raises
``OSError``, so a test that would reach the network fails instead of hanging or quietly
downloading. This file sits at the repository root so that it also applies when nbval
is run on a notebook directly (``pytest notebooks/00_....ipynb``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFERLIB_OFFLINE"] = "1"  # kernels inherit both: they never probe the network

_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address) -> None:
    host = address[0] if isinstance(address, tuple) else address
    try:
        local = isinstance(host, str) and (host == "localhost" or ipaddress.ip_address(host).is_loopback)
    except ValueError:
        local = False
    if self.family == socket.AF_UNIX or local:
        return _connect(self, address)
    raise OSError(f"tests must not use the network (tried to connect to {address!r})")


socket.socket.connect = _loopback_only
_getaddrinfo = socket.getaddrinfo


def _no_dns(host, *args, **kwargs):
    if host in (None, "localhost") or str(host).startswith("127.") or host == "::1":
        return _getaddrinfo(host, *args, **kwargs)
    raise OSError(f"tests must not use the network (tried to resolve {host!r})")


socket.getaddrinfo = _no_dns


# nbval: numbers that depend on floating-point paths ------------------------------------------
# tests/nbval_sanitize.cfg masks every decimal number in every output (other CPUs print other
# third decimals; the lessons' own assertions guard the values, with tolerances). A cell tagged
# `nbval-numbers` also has its integers masked: counts of correct items, a budget chosen by
# comparing accuracies, a C that a near tie makes 10 on one CPU and 0.1 on another (one mask for
# every number). Its words (verdicts, class names) are still compared. docs/authoring.md.
NUMBERS_TAG = "nbval-numbers"
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(\.\d+)?(e[-+]?\d+)?(?![\w])")
_SPACES = re.compile(r"[ \t]+")

try:
    from nbval.plugin import IPyNbCell
except ImportError:  # nbval is a test dependency; without it there is nothing to patch
    IPyNbCell = None

if IPyNbCell is not None:
    _nbval_sanitize = IPyNbCell.sanitize

    def _sanitize(self, s):
        s = _nbval_sanitize(self, s)
        if isinstance(s, str):
            if NUMBERS_TAG in self.cell.metadata.get("tags", []):
                s = _NUMBER.sub("NUMBER", s).replace("DECIMAL", "NUMBER")   # C 10 and C 0.1 alike
            s = _SPACES.sub(" ", s)  # a column padded to a number one digit longer moves by a space: not a change
        return s

    IPyNbCell.sanitize = _sanitize
