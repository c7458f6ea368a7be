"""Real programs for the kill-switch end-to-end tests.

- ``requires``: ``require_programs`` (skip, or fail when CI=true), ``wait_for``.
- ``sink``: ``SmtpSink``, the loopback SMTP server Postfix relays to ("escaped" mail).
- ``postfix``: ``PostfixInstance``, a private Postfix under one directory with a
  maillog_file, a relayhost, and an alias that loops (``loop_address``).
- ``pop3``: ``DovecotPop3``, a private dovecot POP3 server with one Maildir.
- ``sasl``: ``DovecotAuth``, a private dovecot auth socket for smtpd's SASL
  (``smtpd_sasl_type = dovecot``), and ``submit`` (SMTP AUTH on loopback).
- ``fetchmail``: ``FetchmailDaemon``, a real ``fetchmail --daemon`` into Postfix.
- ``messages``: ``MailingList``, list-shaped posts (bounce address, List-Id).
- ``sample-maillog.txt``: a real maillog_file excerpt of a storm and its freeze.

Typical use (``test_harness.py`` has the fixtures)::

    with SmtpSink() as sink, private_root() as root:
        with PostfixInstance(root / "postfix", relayhost=sink.relayhost) as postfix:
            postfix.inject(LIST.bounce_address, postfix.loop_address, LIST.message(1))
            sink.wait_for_count(1, 15, where=lambda m: m.null_sender)  # backscatter
            # ... start the watcher on postfix.log_path with -c postfix.config_dir ...
            postfix.queue_json()  # what is still queued, sender "MAILER-DAEMON" for <>

Everything runs as root on loopback only; nothing touches the machine's own Postfix.
"""
