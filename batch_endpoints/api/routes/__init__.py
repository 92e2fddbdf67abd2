"""The API's routes, one router a noun; batch_endpoints.api.app includes them all."""
