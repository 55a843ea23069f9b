"""Batch inference runs: plan an input into shards, submit, poll, collect and merge answers in input order."""
