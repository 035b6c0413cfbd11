"""The portal's pages, by persona."""

from django.urls import path

from provisioning.views import (
    access,
    admin_views,
    adoption,
    audit,
    capacity,
    decommission,
    drift,
    lists,
    notifications,
    progress,
    quota_requests,
    recovery,
    requests,
    reviews,
)

app_name = "provisioning"

urlpatterns = [
    # Team leads
    path("requests/", lists.request_list, name="my_requests"),
    path("requests/new/", requests.new_workspace, name="new_workspace"),
    path("requests/<int:pk>/", requests.request_detail, name="request_detail"),
    path("requests/<int:pk>/edit/", requests.request_edit, name="request_edit"),
    path("requests/<int:pk>/submit/", requests.request_submit, name="request_submit"),
    path("requests/<int:pk>/cancel/", requests.request_cancel, name="request_cancel"),
    path("requests/<int:pk>/copy/", requests.request_copy, name="request_copy"),
    path("requests/preview-names/", requests.preview_names, name="preview_names"),
    path("workspaces/", lists.workspace_list, name="workspace_list"),
    path("workspaces/<int:pk>/", requests.workspace_detail, name="workspace_detail"),
    path("workspaces/<int:pk>/add-clusters/", requests.add_clusters, name="add_clusters"),
    path("workspaces/<int:pk>/add-members/", requests.add_members, name="add_members"),
    path("workspaces/<int:pk>/revoke/", requests.revoke_members, name="revoke_members"),
    path("workspaces/<int:pk>/renew/", requests.membership_renew, name="membership_renew"),
    path("workspaces/<int:pk>/change/", requests.workspace_change, name="workspace_change"),
    path("workspaces/<int:pk>/review/", reviews.review_start, name="review_start"),
    path("reviews/", reviews.review_list, name="review_list"),
    path("reviews/<int:pk>/", reviews.review_detail, name="review_detail"),
    path("reviews/<int:pk>/decisions.csv", reviews.review_csv, name="review_csv"),
    path("workspaces/<int:pk>/reconcile/", drift.workspace_reconcile, name="workspace_reconcile"),
    path(
        "workspaces/<int:pk>/decommission/",
        decommission.workspace_decommission,
        name="workspace_decommission",
    ),
    path("workspaces/<int:pk>/purge-key-vault/", decommission.key_vault_purge, name="key_vault_purge"),
    path("requests/<int:pk>/progress/", progress.request_progress, name="request_progress"),
    path("requests/<int:pk>/amend/", recovery.request_amend, name="request_amend"),
    # Admins
    path("requests/<int:pk>/retry/", progress.request_retry, name="request_retry"),
    path("requests/<int:pk>/keep/", recovery.request_keep, name="request_keep"),
    path("requests/<int:pk>/rollback/", recovery.request_rollback, name="request_rollback"),
    path("approvals/", admin_views.approval_queue, name="approval_queue"),
    path("requests/<int:pk>/approve/", admin_views.request_approve, name="request_approve"),
    path("requests/<int:pk>/reject/", admin_views.request_reject, name="request_reject"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/exports/", audit.audit_exports, name="audit_exports"),
    path("audit/exports/new", audit.audit_export_create, name="audit_export_create"),
    path("audit/exports/<int:pk>/download", audit.audit_export_download, name="audit_export_download"),
    path("capacity/", capacity.capacity_page, name="capacity"),
    path("capacity/refresh/", capacity.capacity_refresh, name="capacity_refresh"),
    path("capacity/spend/", capacity.capacity_spend, name="capacity_spend"),
    path("capacity/budgets/", capacity.budget_set, name="budget_set"),
    path("capacity/quota-requests/", quota_requests.quota_request_list, name="quota_requests"),
    path("capacity/quota-requests/new/", quota_requests.quota_request_new, name="quota_request_new"),
    path(
        "capacity/quota-requests/<int:pk>/approve/",
        quota_requests.quota_request_approve,
        name="quota_request_approve",
    ),
    path(
        "capacity/quota-requests/<int:pk>/reject/",
        quota_requests.quota_request_reject,
        name="quota_request_reject",
    ),
    path("workspaces/discover/", adoption.discover_page, name="workspace_discover"),
    path("workspaces/discover/refresh/", adoption.discover_refresh, name="workspace_discover_refresh"),
    path("workspaces/discover/adopt/", adoption.workspace_adopt, name="workspace_adopt"),
    path("workspaces/<int:pk>/take-over/", adoption.workspace_take_over, name="workspace_take_over"),
    path("drift/", drift.drift_list, name="drift"),
    path("drift/accept/", drift.drift_accept, name="drift_accept"),
    path("drift/remediate/", drift.drift_remediate, name="drift_remediate"),
    # Data scientists (and everyone with access)
    path("access/", access.my_access, name="my_access"),
    path("access/<int:pk>/config.json", access.config_json, name="config_json"),
    # Everyone: which kinds of mail they receive
    path("notifications/settings/", notifications.notification_settings, name="notification_settings"),
]
