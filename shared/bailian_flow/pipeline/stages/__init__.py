"""The stages of a run, one module per leg: upload, training, delivery (deploy or import).

Each `step_*` acts on a fact (claiming the next intent, then acting), each `act_*` performs a claimed intent (also
when resumed), each `poll_*` follows a Bailian resource that only polling can see.
"""
