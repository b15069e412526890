"""What the search and batch prediction share about joining a Ray cluster (no Ray import here)."""

from __future__ import annotations

import socket

from .errors import MnaszooError

__all__ = ["probe_ray_address"]


def probe_ray_address(address: str, *, local_option: str) -> None:
    """Fail fast where nothing listens at a ``HOST:PORT`` Ray address: ``ray.init`` would retry
    for minutes.

    Args:
        address: what the user gave (``"auto"`` and forms Ray resolves itself pass unchecked).
        local_option: the command-line option that starts a local cluster instead, for the
            message (``"--workers N"``, ``"--ray"``).

    Raises:
        MnaszooError: nothing answers at ``address``.
    """
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as error:
        raise MnaszooError(
            f"Nothing answers at the Ray address {address!r} ({error}). Start the cluster with"
            " `ray start --head --port=PORT` on its head node and pass that node's HOST:PORT, or"
            f" use {local_option} for a local cluster."
        ) from error
