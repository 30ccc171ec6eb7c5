"""The API's routers, one module per resource (health, keys, tenants, workflows,
executions, the delivery WebSocket)."""
