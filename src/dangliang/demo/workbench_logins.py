"""The demo's people in the workbench (`dangliang demo --serve`).

Three logins, one per role, so that a newcomer can do the month's work as a county does it:
the bureau admin (演示管理员) imports and computes, the finance auditor (演示审计员) approves
what someone else computed (maker-checker), and a township centre's clerk (演示填报员, the
first centre) sees only their own institution. Each gets a fresh random password every
time the demo serves, printed once; they are recorded like any user change, with the demo's
actor.
"""

from __future__ import annotations

from dataclasses import dataclass

from dangliang.application import Dangliang
from dangliang.application.accounts import temporary_password


@dataclass(frozen=True)
class DemoLogin:
    name: str
    role: str
    institution: str | None
    password: str
    what_zh: str


PEOPLE = (
    ("演示管理员", "admin", "县卫健局管理员：导入、计算、标记已支付、管理用户"),
    ("演示审计员", "auditor", "财政审计员：审核批准他人计算的批次、核验日志"),
    ("演示填报员", "clerk", "机构填报员：只看本机构及其村卫生室，导入本机构记录"),
)


def demo_logins(app: Dangliang, actor: str) -> list[DemoLogin]:
    """Make sure the three demo users exist and are enabled with the right role; give each a
    new password (no change asked at sign-in: it is a demo)."""
    users = app.users
    centres = sorted(c for c, (_, parent) in app.institutions().items() if parent is None)
    clerk_of = centres[0] if centres else None
    existing = {u.name: u for u in users.all_users()}
    logins = []
    for name, role, what in PEOPLE:
        institution = clerk_of if role == "clerk" else None
        user = existing.get(name)
        if user is None:
            users.add(name, role=role, institution=institution, actor=actor)
        else:
            if not user.active:
                users.enable(name, actor=actor)
            if (user.role, user.institution) != (role, institution):
                users.change_role(name, role=role, institution=institution, actor=actor)
        password = temporary_password(name)
        users.set_password(name, password, actor=actor, must_change=False)
        logins.append(DemoLogin(name, role, institution, password, what))
    return logins
