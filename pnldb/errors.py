class PnlError(Exception):
    """An error meant for the user: one clear line, no traceback."""
