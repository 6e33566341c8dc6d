"""The Delivery Optimization Engine: what it learns, what it serves, what operators see.

Nothing outside this package writes to its tables except through :mod:`privacy.engine_gate`,
the privacy layer's gate, which decides whether an account and a contact may enter at all.
"""
