"""The operators' console, one home per use case:

approvals.py   four eyes: one operator asks, a second agrees before it happens
queue.py       the review queue: cases with what an operator needs to decide, claims, decisions
"""
