"""The run protocol: the log, a run's state, transitions and their fencing, intents and leases, markers, the
waiting line, compensation and cancel. It names no run kind's module."""
