"""A local stand-in for Azure (Entra ID, ARM, Graph) that the real SDK clients talk to over HTTPS.

Used by the tests and by ``manage.py demo`` / ``manage.py azure_standin``; it never imports ``azure.*``.
See ``StandIn`` for the API, and the README (the quick start and the tests) for what it is for.
"""

from provisioning.standin.faults import REALISTIC_LATENCY
from provisioning.standin.outside import ACTIONS as OUTSIDE_ACTIONS
from provisioning.standin.scripted import scripted_workspace
from provisioning.standin.server import StandIn

__all__ = ["OUTSIDE_ACTIONS", "REALISTIC_LATENCY", "StandIn", "scripted_workspace"]
