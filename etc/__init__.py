"""The example settings file, shipped as package data (``watcher.example``)."""
