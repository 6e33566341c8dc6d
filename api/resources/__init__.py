"""The API's resources: each module adds its operations to ``api.v1.v1``."""
