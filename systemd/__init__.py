"""The systemd unit, shipped as package data (``watcher.unit``) for ``stormwatch install-unit``."""
