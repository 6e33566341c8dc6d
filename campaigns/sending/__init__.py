"""Sending a started campaign's ``Message`` rows, at most once each.

Delivery guarantee. :func:`campaigns.services.start` freezes the audience into ``Message`` rows
and enqueues one send chain per SMTP connection. A chain's job (:mod:`.delivery`) *claims*
pending rows (:mod:`.claims`: status ``claimed`` with a claim token, committed before any SMTP),
sends them in id order over one connection (:mod:`.servers`, rendered with the view of
:mod:`.rendering`) and marks each row right after the server accepted it. The database, not the
queue, says what is left to do: :func:`.reconciler.reconcile` (periodic) starts due scheduled
campaigns, re-enqueues campaigns whose queue messages were lost, and recovers claims of dead
workers. In a dead worker's claim, rows sent are marked; of the others, only the first ones in
id order can have been accepted without their mark (``UNCERTAIN_PER_CLAIM``): they are marked
``failed`` ("interrupted", never resent: at most once); the rest go back to ``pending``.

Modules: ``servers`` (where mail goes, chains), ``claims`` (taking and giving back rows),
``rendering`` (the compiled campaign), ``delivery`` (the send loop), ``reconciler`` (recovery),
``transactional`` (one transactional message, by the same rules).
"""
