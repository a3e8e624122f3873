"""Tokens and roles. Auth is off until the first token exists, then every request needs one.

Tokens are random strings shown once when created; only their SHA-256 is stored, so a leaked
database does not leak credentials.

>>> from mainspring.storage.memory import memory_metadata
>>> tokens = TokenStore(memory_metadata())
>>> tokens.enabled()
False
>>> secret = tokens.create("ann", [Role.APPROVER], actor="admin")
>>> tokens.enabled(), tokens.authenticate(secret).name
(True, 'ann')
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from mainspring.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from mainspring.records import Principal, Role, check_name, new_id, utcnow
from mainspring.storage.base import MetadataStore
from mainspring.storage.chain import HashChain
from mainspring.storage.schema import tokens

TOKEN_PREFIX = "ms_"  # noqa: S105 (a prefix, not a secret)
ACCESS_STREAM = "access"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_roles(values: Iterable[str]) -> frozenset[Role]:
    """Roles from their names; unknown names are an error that lists the valid ones."""
    out = set()
    for value in values:
        try:
            out.add(Role(value))
        except ValueError:
            raise InvalidInputError(
                f"role {value!r} is not one of {', '.join(r.value for r in Role)}", field="roles"
            ) from None
    if not out:
        raise InvalidInputError("give at least one role", field="roles")
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token's public facts (never the token itself)."""

    id: str
    name: str
    roles: frozenset[Role]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class TokenStore:
    """Issues, checks and revokes API tokens; changes go to the ``access`` hash chain."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self.log = HashChain(store, ACCESS_STREAM)

    def enabled(self) -> bool:
        """Whether any live token exists (then authentication is required)."""
        with self.store.read() as conn:
            found = conn.execute(
                select(tokens.c.id).where(tokens.c.revoked_at.is_(None)).limit(1)
            ).first()
            return found is not None

    def create(self, name: str, roles: Iterable[Role | str], *, actor: str) -> str:
        """Create a token for principal ``name``; returns the token (shown only now)."""
        check_name(name, field="name")
        role_set = parse_roles(str(r) for r in roles)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        with self.store.write() as conn:
            token_id = new_id()
            conn.execute(
                tokens.insert().values(
                    id=token_id,
                    name=name,
                    token_sha256=_digest(token),
                    roles=sorted(r.value for r in role_set),
                    created_at=now,
                    created_by=actor,
                )
            )
            self.log.append(
                conn,
                actor=actor,
                action="token.create",
                subject=name,
                at=now,
                details={"id": token_id, "roles": sorted(r.value for r in role_set)},
            )
        return token

    def authenticate(self, token: str | None) -> Principal:
        """The principal a token belongs to."""
        if not token:
            raise AuthenticationError(
                "this project requires a token: send 'Authorization: Bearer <token>' "
                "(CLI: set MAINSPRING_TOKEN)"
            )
        digest = _digest(token)
        with self.store.read() as conn:
            row = conn.execute(select(tokens).where(tokens.c.token_sha256 == digest)).first()
        if row is None or not hmac.compare_digest(row.token_sha256, digest):
            raise AuthenticationError("the token is not valid")
        if row.revoked_at is not None:
            raise AuthenticationError(f"the token of {row.name} was revoked")
        return Principal(row.name, frozenset(Role(r) for r in row.roles))

    def list(self) -> list[TokenInfo]:
        with self.store.read() as conn:
            rows = conn.execute(select(tokens).order_by(tokens.c.created_at)).all()
        return [
            TokenInfo(
                r.id,
                r.name,
                frozenset(Role(x) for x in r.roles),
                r.created_at,
                r.created_by,
                r.revoked_at,
            )
            for r in rows
        ]

    def revoke(self, name: str, *, actor: str) -> int:
        """Revoke every live token of principal ``name``; returns how many."""
        now = utcnow()
        with self.store.write() as conn:
            live = (
                conn.execute(
                    select(tokens.c.id).where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
                )
                .scalars()
                .all()
            )
            if not live:
                raise NotFoundError("token of", name)
            conn.execute(tokens.update().where(tokens.c.id.in_(live)).values(revoked_at=now))
            self.log.append(
                conn,
                actor=actor,
                action="token.revoke",
                subject=name,
                at=now,
                details={"ids": list(live)},
            )
        return len(live)


#: The role each kind of operation needs (the REST API and the CLI both check these).
NEEDS: dict[str, Role] = {
    "read": Role.VIEWER,
    "register": Role.OPERATOR,
    "decide": Role.OPERATOR,
    "alias": Role.OPERATOR,
    "request-approval": Role.OPERATOR,
    "rollback": Role.OPERATOR,
    "approve": Role.APPROVER,
    "reject": Role.APPROVER,
    "record-outcome": Role.OPERATOR,
    "review": Role.APPROVER,
    "admin": Role.ADMIN,
}


def require(principal: Principal, operation: str) -> None:
    """Raise ``PermissionDeniedError`` unless ``principal`` may perform ``operation``.

    >>> require(Principal("ann", frozenset({Role.VIEWER})), "approve")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mainspring.errors.PermissionDeniedError: ann may not approve: that needs the approver role ...
    """
    role = NEEDS[operation]
    if not principal.has(role):
        held = ", ".join(sorted(r.value for r in principal.roles)) or "no roles"
        raise PermissionDeniedError(
            f"{principal.name} may not {operation}: that needs the {role.value} role "
            f"({principal.name} has: {held})"
        )
