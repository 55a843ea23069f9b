"""bailian-flow: the Bailian (Model Studio) model lifecycle as event-driven FC functions.

Deliberately imports nothing: each FC handler imports only the submodules it needs (cold start).
"""

__version__ = "0.1.0"
