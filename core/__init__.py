"""Plumbing shared by every package: app factory, config, database, queue, signing, mail."""
