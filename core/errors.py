"""Domain errors raised by services and mapped to HTTP answers by the app factory."""


class NotFoundError(LookupError):
    """The row does not exist, or belongs to another account (the two look the same)."""


class ValidationError(ValueError):
    """Input that a service refuses, with a message fit to show the person who sent it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class PermissionDeniedError(PermissionError):
    """The member's role does not allow the action."""
