"""Import-only runs: a marker (or a REST body) names custom weights in OSS to import and deploy."""
