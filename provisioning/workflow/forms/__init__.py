"""Forms of the team lead's pages: a request's workspace details, clusters, members and revocations.

The forms only check what a browser can get wrong (required fields, numbers, known choices). The
portal's own rules (naming, policy, uniqueness) are in ``provisioning.workflow.validation``; their problems
are attached to these forms by field path (``workspace.team``, ``clusters.1.name``) so each one
appears next to the field the team lead typed in, with everything they typed kept.
"""

from provisioning.workflow.forms.parts import (
    ClusterForm,
    ClusterFormSet,
    MemberForm,
    MemberFormSet,
    RevokeForm,
    WorkspaceForm,
)
from provisioning.workflow.forms.request import RequestForms, filled_forms, request_data
from provisioning.workflow.forms.widgets import SizeChoices

__all__ = [
    "ClusterForm",
    "ClusterFormSet",
    "MemberForm",
    "MemberFormSet",
    "RequestForms",
    "RevokeForm",
    "SizeChoices",
    "WorkspaceForm",
    "filled_forms",
    "request_data",
]
