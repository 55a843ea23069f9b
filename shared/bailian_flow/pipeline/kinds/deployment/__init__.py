"""Base-model deployments: a marker (or a REST body) deploys one of Bailian's own models on a plan it names."""
