"""imkit: a small instant-messaging server and clients on one anyio protocol core."""

__version__ = "0.2.0"
