"""The fleet: shared windows on Redis (I/O at the edge; the pure part is watcher.core.fleet)."""
