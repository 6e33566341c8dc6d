"""Contacts, lists and subscriptions: the personal data the platform exists to protect."""
