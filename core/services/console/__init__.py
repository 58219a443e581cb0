"""The operators' console, one home per use case:

approvals.py   four eyes: one operator asks, a second agrees before it happens
queue.py       the review queue: cases with what an operator needs to decide, claims, decisions
metrics.py     operations metrics of a period (staff: analysts too), counted by the database
deny_list.py   the deny list, masked; removing an entry takes a second operator
staff.py       staff accounts (admins): one-time setup links, second factor reset, disable / enable
"""
