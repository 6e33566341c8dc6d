"""Public beacon, click and unsubscribe endpoints, the event store and its reports."""
