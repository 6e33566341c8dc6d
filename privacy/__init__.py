"""The privacy layer: the single decision point for what tracking may record, and data rights."""
