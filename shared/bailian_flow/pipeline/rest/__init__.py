"""The REST door of the webhook function: routes, auth, input bounds, what the API does to runs, the status page."""
