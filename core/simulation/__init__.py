"""The recovery engine against its sandbox partners in one process, with faults — not a
service of the portal but a proving ground for it:

    rig.py         the engine wired in-process on a clock of one's choosing (`build_rig`), for
                   the simulation, the engine's tests and the benchmark
    simulator.py   `simulate(seed)`: recoveries under injected faults and worker crashes
    invariants.py  `check_invariants`: the engine's promises, checked against the database and
                   against what the partner sandboxes themselves recorded
"""
