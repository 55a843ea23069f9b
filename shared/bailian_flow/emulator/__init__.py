"""Loopback emulator of the Bailian (DashScope) API and an OSS subset.

Run it with ``python -m bailian_flow.emulator``; embed it with :func:`bailian_flow.emulator.__main__.serve`.
"""
