"""The REST API (``/api/v1/``): the pages' services and selectors, as JSON, described by OpenAPI 3."""
