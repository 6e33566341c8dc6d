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


#: Seconds a client is told to wait (``Retry-After``) when the database cannot be reached.
DATABASE_RETRY_AFTER = 30


def database_unavailable(exc: BaseException) -> bool:
    """True for a failure of the database itself (refused, dropped, timed out, pool exhausted),
    not of the statement: an IntegrityError or a ProgrammingError stays a bug and answers 500."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
