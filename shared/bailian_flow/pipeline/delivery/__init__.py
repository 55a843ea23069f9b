"""The delivery leg a fine-tune or an import ends with: deploy (or import the weights, then deploy), follow
the deployment to RUNNING, retention, TTL and teardown."""
