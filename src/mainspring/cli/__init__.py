"""The ``mainspring`` command line."""
