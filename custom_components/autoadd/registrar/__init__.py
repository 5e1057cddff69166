"""The registrar core: what each device is to this home, what evidence moves it, and the ownership
lifecycle. No Home Assistant here: the integration implements `ports.py` and maps results to HA.

    record.py        one record per device, with its phase
    machine.py       the transitions: the only place a phase changes, each on named evidence
    verdict.py       what a verified proof means against what is stored
    core.py          the registrar: scheduling, commits, history
    session.py       one attempt: hello, proof, verdict, note or push
    failures.py      back-off, refusals, and what the owner is told
    rotation.py      rotating the home key
    handover.py      handing a device over, cancelling
    ownership.py     taking a device in, removing, blocking, what outlives the integration
    manufacturers.py trusted roots
    keys.py, state.py, ports.py, migration.py   the data, the host's side, older stores
"""
