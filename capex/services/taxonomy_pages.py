"""What the console's taxonomy and people pages show, each page's view made by one call:
the whole tree with how many active volunteers offer and want each skill, a search in
names and aliases, one skill with the choices of a new parent, and the people a
coordinator looks for (by username, name or email, active or not)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from capex.models import Skill, SkillOffer, SkillWant, Volunteer
from capex.services import skills as skill_service
from capex.services.skills import SkillInTree, SkillView

# How many skills a search lists, and how many people a people search lists.
SEARCH_SHOWN = 50
PEOPLE_SHOWN = 50


@dataclass(frozen=True, slots=True)
class SkillUse:
    """How many active volunteers offer and want a skill (itself, not the skills below it)."""

    offers: int = 0
    wants: int = 0


@dataclass(frozen=True, slots=True)
class TaxonomyNode:
    """A skill in the tree, its use and the skills below it (by name)."""

    skill: SkillView
    use: SkillUse
    children: tuple[TaxonomyNode, ...]

    @property
    def size(self) -> int:
        """The skills of this subtree, itself included."""
        return 1 + sum(child.size for child in self.children)


@dataclass(frozen=True, slots=True)
class SkillFound:
    skill: SkillView
    use: SkillUse
    path: tuple[str, ...]  # the names of its ancestors, root first


@dataclass(frozen=True, slots=True)
class TaxonomyPage:
    """The tree (the root areas by name), and the skills a search found (None: no search)."""

    roots: tuple[TaxonomyNode, ...]
    found: tuple[SkillFound, ...] | None
    more: bool
    total: int

    def path_to(self, skill_id: str) -> tuple[str, ...]:
        """The ids from a root area down to ``skill_id`` (empty if it is not in the tree)."""
        stack: list[tuple[TaxonomyNode, tuple[str, ...]]] = [
            (root, (root.skill.id,)) for root in self.roots
        ]
        while stack:
            current, path = stack.pop()
            if current.skill.id == skill_id:
                return path
            stack.extend((child, (*path, child.skill.id)) for child in current.children)
        return ()


@dataclass(frozen=True, slots=True)
class SkillChoice:
    """A skill as a choice of parent: its id, its name and where it is."""

    id: str
    name: str
    depth: int


@dataclass(frozen=True, slots=True)
class SkillPage:
    """One skill to edit: itself with its place, its use, and every skill as a parent choice."""

    skill: SkillInTree
    use: SkillUse
    choices: tuple[SkillChoice, ...]


def skill_use(session: Session) -> dict[str, SkillUse]:
    """Every offered or wanted skill's use by active volunteers: two grouped counts."""
    counts: dict[str, dict[str, int]] = {}
    for key, table in (("offers", SkillOffer), ("wants", SkillWant)):
        rows = session.execute(
            select(table.skill_id, func.count())
            .join(Volunteer, Volunteer.id == table.volunteer_id)
            .where(Volunteer.is_active.is_(True))
            .group_by(table.skill_id)
        )
        for skill_id, count in rows:
            counts.setdefault(skill_id, {})[key] = int(count)
    return {skill_id: SkillUse(**found) for skill_id, found in counts.items()}


def _all_skills(session: Session) -> list[Skill]:
    return list(session.scalars(select(Skill).options(selectinload(Skill.aliases))))


def taxonomy_page(session: Session, q: str | None = None) -> TaxonomyPage:
    """The whole tree, and with ``q`` the skills whose id, name or an alias holds it."""
    skills = _all_skills(session)
    use = skill_use(session)
    children: dict[str | None, list[Skill]] = {}
    for skill in skills:
        children.setdefault(skill.parent_id, []).append(skill)

    def node(skill: Skill) -> TaxonomyNode:
        below = sorted(children.get(skill.id, ()), key=lambda child: child.name.casefold())
        return TaxonomyNode(
            skill_service.skill_view(skill),
            use.get(skill.id, SkillUse()),
            tuple(node(child) for child in below),
        )

    roots = tuple(
        node(skill) for skill in sorted(children.get(None, ()), key=lambda s: s.name.casefold())
    )
    found: tuple[SkillFound, ...] | None = None
    more = False
    if q:
        by_id = {skill.id: skill for skill in skills}
        hits = skill_service.list_skills(session, q=q, limit=SEARCH_SHOWN + 1)
        more = len(hits) > SEARCH_SHOWN
        found = tuple(
            SkillFound(
                skill_service.skill_view(hit),
                use.get(hit.id, SkillUse()),
                _path_names(by_id, hit),
            )
            for hit in hits[:SEARCH_SHOWN]
        )
    return TaxonomyPage(roots, found, more, len(skills))


def _path_names(by_id: dict[str, Skill], skill: Skill) -> tuple[str, ...]:
    names: list[str] = []
    current = skill.parent_id
    while current is not None and current in by_id:
        names.insert(0, by_id[current].name)
        current = by_id[current].parent_id
    return tuple(names)


def parent_choices(session: Session) -> tuple[SkillChoice, ...]:
    """Every skill as a possible parent, by name (the service still checks each move)."""
    tree = skill_service.parents(session)
    rows = session.execute(select(Skill.id, Skill.name).order_by(Skill.name, Skill.id))
    return tuple(
        SkillChoice(skill_id, name, skill_service.depth_of(tree, skill_id))
        for skill_id, name in rows
    )


def skill_page(session: Session, skill_id: str) -> SkillPage:
    """One skill with its place and use, and the choices of a new parent; 404 if unknown."""
    skill = skill_service.get_skill(session, skill_id)
    use = skill_use(session).get(skill_id, SkillUse())
    return SkillPage(skill, use, parent_choices(session))


def resolve_skill(choices: Sequence[SkillChoice], typed: str) -> str:
    """The id a typed parent means: an id, or a name in any case; else what was typed."""
    text = " ".join(typed.split())
    ids = {choice.id for choice in choices}
    if text in ids:
        return text
    by_name = {choice.name.casefold(): choice.id for choice in choices}
    return by_name.get(text.casefold(), text)


@dataclass(frozen=True, slots=True)
class PeoplePage:
    """The volunteers a search found (by username), and whether more matched."""

    people: tuple[Volunteer, ...]
    more: bool


def find_people(session: Session, q: str | None, *, limit: int = PEOPLE_SHOWN) -> PeoplePage:
    """Volunteers, active or not, whose username, name or email holds ``q`` (for
    coordinators: the email is searched, and shown, only on their pages); all without ``q``."""
    statement = select(Volunteer).order_by(Volunteer.username_key).limit(limit + 1)
    if q:
        pattern = skill_service.contains_pattern(q)
        statement = statement.where(
            or_(
                Volunteer.username.ilike(pattern, escape="\\"),
                Volunteer.display_name.ilike(pattern, escape="\\"),
                Volunteer.email.ilike(pattern, escape="\\"),
            )
        )
    found = list(session.scalars(statement))
    return PeoplePage(tuple(found[:limit]), len(found) > limit)
