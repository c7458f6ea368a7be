"""stormwatch: a kill switch for Postfix mail storms."""

__version__ = "0.1.0"
