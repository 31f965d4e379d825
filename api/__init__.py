"""The REST API: reminder CRUD, validation, credentials, audit, ack."""
