"""The HTTP layer: the Falcon app, the purchase fast path, the request observer, errors, OpenAPI, resources."""
