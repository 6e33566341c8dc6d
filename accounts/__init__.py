"""Organisations, their members and roles, login, settings and the account's lifecycle fields."""
