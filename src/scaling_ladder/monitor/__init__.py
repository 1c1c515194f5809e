"""Check a running job against its ladder's band (:mod:`.monitor`) and raise stop signals
(:mod:`.signals`)."""

from .monitor import RunCheck, check_run

__all__ = ["check_run", "RunCheck"]
