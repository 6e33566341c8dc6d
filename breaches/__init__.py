"""Breach notices (privacy policy 003, s.11): operators record an incident, notify the owners
of the affected accounts and later send them a report of the actions taken; all audited."""
