"""Signed outgoing webhooks (Standard Webhooks): endpoints, the event outbox, delivery."""
