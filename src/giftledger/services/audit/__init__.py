"""The audit log: who did what, to which account, site and card, from where, and whether it was applied.

- recording.py: writing records (an accepted money movement's in its own transaction), masking, details;
- batching.py: refused GraphQL mutations' records, written behind the requests in batches;
- queries.py: a page of records, the CSV export, failed logins (Store Owner only);
- trail.py: the Audit Trail page (filters, site names, the spreadsheet export, card look-up pauses)."""

from giftledger.services.audit.batching import AUDIT_WRITE_ERRORS, Attempt, AuditQueue
from giftledger.services.audit.queries import (
    CSV_COLUMNS,
    LoginThrottle,
    export_csv,
    export_csv_text,
    list_events,
    login_failures,
)
from giftledger.services.audit.recording import (
    ACCEPTED,
    OUTCOMES,
    PAUSED,
    REFUSED,
    Audit,
    Detail,
    Scalar,
    Where,
    add_event,
    clean_detail,
    mask_card,
    record_accepted,
    record_change,
)
from giftledger.services.audit.trail import (
    PAUSES_SHOWN,
    TRAIL_PAGE_SIZE,
    CardLookupPause,
    TrailEntry,
    TrailFilter,
    audit_trail,
    card_lookup_pauses,
    export_spreadsheet_csv,
    trail_filter,
)

__all__ = [
    "ACCEPTED",
    "AUDIT_WRITE_ERRORS",
    "CSV_COLUMNS",
    "OUTCOMES",
    "PAUSED",
    "PAUSES_SHOWN",
    "REFUSED",
    "TRAIL_PAGE_SIZE",
    "Attempt",
    "Audit",
    "AuditQueue",
    "CardLookupPause",
    "Detail",
    "LoginThrottle",
    "Scalar",
    "TrailEntry",
    "TrailFilter",
    "Where",
    "add_event",
    "audit_trail",
    "card_lookup_pauses",
    "clean_detail",
    "export_csv",
    "export_csv_text",
    "export_spreadsheet_csv",
    "list_events",
    "login_failures",
    "mask_card",
    "record_accepted",
    "record_change",
    "trail_filter",
]
