"""The timer: one tick polls what only polling can see, admits waiting runs, re-drives lost events, adopts
orphan datasets and expires deployments."""
