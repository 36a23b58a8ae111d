"""mergelogs: merge a pen farm's backend access logs, putting back the real client address."""

__version__ = "0.1.0"
