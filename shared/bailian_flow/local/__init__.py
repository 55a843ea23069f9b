"""`bailian-flow dev`: the functions of s.yaml under their triggers, on loopback, against the emulator.

Import `bailian_flow.local.stack.LocalStack` for programmatic use (tests, the demo); this package imports
nothing at import time.
"""
