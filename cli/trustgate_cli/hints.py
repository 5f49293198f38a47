"""What to do after an error: every error line ends with the next command to run (`; try: trustgate list --mine`)."""

from __future__ import annotations

import argparse
import re

from trustgate_cli.client import ENDPOINT_ENV
from trustgate_cli.errors import CliError

# A message that already names the command to run next needs no second one.
_NAMES_A_COMMAND = re.compile(
    r"\b(?:trustgate [a-z][a-z-]*|aws (?:configure|sso)\b|make local|check TRUSTGATE_ENDPOINT)"
)
_AGAIN = "run the same command again in a few seconds"
_SEE_REQUEST = (
    "already_decided",
    "already_decided_by_you",
    "conflict",
    "request_nonconforming",
    "link_used",
    "not_break_glass",
    "already_reviewed",
)
_REVIEWABLE = "trustgate list --review pending (the break-glass grants you may review)"
_ROLE_RULES = ("exceeds_ceiling", "invalid_policy", "invalid_pattern", "unadopted_open_statement", "last_admin")
_MALFORMED = ("invalid_input", "unknown_parameter", "repeated_parameter", "invalid_cursor", "body_too_large")
# API Gateway's refusals of the signature or the credentials behind it.
_CREDENTIALS = (
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "IncompleteSignatureException",
    "AccessDeniedException",
)
_ADMIN_COMMANDS = ("roles --managed", "role", "sync", "audit", "policy show", "policy set", "revoke --role")


def next_step(error: CliError, args: argparse.Namespace) -> str:
    """The command (or action) that helps after `error` in the command `args` ran; '' when the message has one."""
    if error.next_step or _NAMES_A_COMMAND.search(error.message):
        return error.next_step
    command = str(getattr(args, "command_name", "") or "")
    request_id, role = getattr(args, "id", None), getattr(args, "role", None)
    roles = getattr(args, "roles", None)  # `request ROLE [ROLE ...]`: one role is named in the hints
    if role is None and isinstance(roles, list) and len(roles) == 1:
        role = roles[0]
    if command == "roles" and getattr(args, "managed", False):
        command = "roles --managed"
    if command == "revoke" and role:  # an admin's revoke of everything one person holds
        command = "revoke --role"
    status = f"trustgate status {request_id}" if request_id else "trustgate list --mine"
    code = error.code
    if code == "not_found":
        return _not_found(command, request_id, role)
    if code in ("forbidden", "not_a_person", "invalid_principal", "own_request", "approver_removed"):
        return _not_allowed(command, code, status)
    if code == "request_pending":
        return "trustgate list --mine --status pending (then trustgate cancel ID)"
    if code == "roles_refused":
        return "ask again without the roles that refuse, or once what each one says is dealt with"
    if code == "no_common_approver":
        return "ask for each role in a request of its own: trustgate request ROLE --reason TEXT"
    if code == "break_glass_not_allowed":
        return f"ask with approval instead: trustgate request {role or 'ROLE'} --reason TEXT (without --break-glass)"
    if code == "already_covered":
        return "trustgate list --mine --status active (then trustgate extend ID, which goes through approval)"
    if code in _SEE_REQUEST or error.code in ("denied", "timed_out", "cancelled", "failed", "expired", "revoked"):
        return status
    if code in ("duration_too_long", "duration_too_short"):
        return "trustgate roles (it shows each role's longest duration)"
    if code in ("ticket_required", "ticket_invalid"):
        return "add --ticket (trustgate roles shows the pattern each role's ticket must match)"
    if code == "justification_too_short":
        return "say what you will do with the role, and why, in --reason"
    if code in ("trust_policy_full", "session_guard_full", "session_name_conflict"):
        return f"wait for a grant to end, or ask an admin of the role to run: trustgate role {role or 'ROLE'}"
    if code in _ROLE_RULES or code in ("iam_refused", "invalid_notify"):
        return f"trustgate policy show {role or 'ROLE'}"
    if code == "precondition_failed":
        return "run the same command again: it reads the current rules first"
    if code == "idempotency_key_reused":
        return "use a new --idempotency-key for a different request"
    if code == "revoke_incomplete":
        return "run the same revoke again (or let the reconciler finish it within 5 minutes)"
    if code == "unknown_profile":
        return "aws configure list-profiles"
    if code in _CREDENTIALS:
        profile = getattr(args, "profile", None)
        return (
            "aws sts get-caller-identity" + (f" --profile {profile}" if profile else "") + " (which credentials sign)"
        )
    if code in ("invalid_response", "unexpected_redirect", "connection_failed", "MissingAuthenticationTokenException"):
        return f"check {ENDPOINT_ENV} (or --endpoint)"
    if error.retryable:  # 429, 5xx, a timeout
        return _AGAIN
    return f"trustgate {command} --help" if command else "trustgate --help"


def _not_found(command: str, request_id: str | None, role: str | None) -> str:
    if command in ("approve", "deny"):
        return "trustgate approvals (the requests you may decide)"
    if command == "review":
        return _REVIEWABLE
    if command == "revoke --role":
        return f"trustgate list --role {role} --status active"
    if request_id:
        return "trustgate list --mine (your requests and their IDs)"
    return "trustgate roles (the roles you may request)"


def _not_allowed(command: str, code: str, status: str) -> str:
    if code == "not_a_person" or (command == "roles" and code == "forbidden"):
        return f"run it as an IAM user or an Identity Center user: trustgate --profile PROFILE {command}"
    if code == "own_request":
        return f"ask another approver; {status}"
    if command in ("approve", "deny"):
        return "trustgate approvals (the requests you may decide)"
    if command == "review":
        return _REVIEWABLE
    if command in _ADMIN_COMMANDS:
        return "ask an admin of the role; trustgate roles shows what you may request"
    if command in ("cancel", "revoke", "extend"):
        return status
    return "trustgate roles (the roles you may request)"
