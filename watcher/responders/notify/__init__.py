"""The notify responder: pages through apprise, in the background.

- :mod:`.text`: what a page says (pure).
- :mod:`.targets`: apprise URLs and config files parsed into targets, their
  redaction for logs, and the configuration check.
- :mod:`.delivery`: :class:`~.delivery.Notifier`, which delivers pages
  without blocking its caller (one worker thread; a lane per target with its
  own retries, backoff and per-send timeout).
- :mod:`.responder`: :class:`~.responder.NotifyResponder`, the ``notify`` action.

Import from the module that defines a name; this package re-exports nothing.
"""
