"""The REST API (``/api/v1``): API keys, the OpenAPI document, and resources over the services."""
