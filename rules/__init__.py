"""The default rule files, shipped as package data (``watcher.default_rules``)."""
