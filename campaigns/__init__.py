"""Campaigns: composing, rendering, the per-recipient Message rows and sending them."""
