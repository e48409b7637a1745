"""The skill taxonomy: browse, curate, import and export."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, selectinload

from capex.errors import Conflict, Invalid, NotFound, field_error
from capex.models import MAX_SKILL_DEPTH, Skill, SkillAlias
from capex.schemas.skills import SkillCreate, SkillUpdate

SkillViewT = TypeVar("SkillViewT", bound="SkillView")


def starting_taxonomy() -> list[dict[str, Any]]:
    """The taxonomy shipped with capex (``capex/data/skills.json``)."""
    text = (resources.files("capex") / "data" / "skills.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def known_ids(session: Session) -> set[str]:
    return set(session.scalars(select(Skill.id)))


def parents(session: Session) -> dict[str, str | None]:
    """Every skill's parent: the whole tree in one small query."""
    return {row.id: row.parent_id for row in session.execute(select(Skill.id, Skill.parent_id))}


def subtree_ids(tree: dict[str, str | None], root: str) -> set[str]:
    """``root`` and every skill below it."""
    children: dict[str | None, list[str]] = {}
    for skill_id, parent_id in tree.items():
        children.setdefault(parent_id, []).append(skill_id)
    found, stack = set(), [root]
    while stack:
        current = stack.pop()
        found.add(current)
        stack.extend(children.get(current, ()))
    return found


def depth_of(tree: dict[str, str | None], skill_id: str) -> int:
    depth, current = 1, tree.get(skill_id)
    while current is not None:
        depth += 1
        current = tree.get(current)
    return depth


def _height(tree: dict[str, str | None], skill_id: str) -> int:
    """Levels from ``skill_id`` down to its deepest descendant, itself included."""
    children = [child for child, parent in tree.items() if parent == skill_id]
    return 1 + max((_height(tree, child) for child in children), default=0)


def contains_pattern(text: str) -> str:
    """A LIKE pattern (escape character backslash) matching ``text`` anywhere."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_skills(
    session: Session,
    *,
    q: str | None = None,
    parent: str | None = None,
    after: str | None = None,
    limit: int = 20,
) -> list[Skill]:
    """Skills in id order; ``parent=""`` lists the roots."""
    query = select(Skill).options(selectinload(Skill.aliases)).order_by(Skill.id)
    if q:
        pattern = contains_pattern(q)
        query = query.where(
            or_(
                Skill.name.ilike(pattern, escape="\\"),
                Skill.id.ilike(pattern, escape="\\"),
                exists().where(
                    SkillAlias.skill_id == Skill.id, SkillAlias.alias.ilike(pattern, escape="\\")
                ),
            )
        )
    if parent is not None:
        if parent == "":
            query = query.where(Skill.parent_id.is_(None))
        else:
            if session.get(Skill, parent) is None:
                raise Invalid(
                    f"unknown parent skill {parent!r}",
                    [field_error(["query", "parent"], f"unknown skill {parent!r}")],
                )
            query = query.where(Skill.parent_id == parent)
    if after is not None:
        query = query.where(Skill.id > after)
    return list(session.scalars(query.limit(limit)))


@dataclass(frozen=True, slots=True)
class SkillView:
    """A skill as the taxonomy shows it: its parent by id, its aliases in their order."""

    id: str
    name: str
    description: str
    parent: str | None
    aliases: tuple[str, ...]
    wikidata: str | None


@dataclass(frozen=True, slots=True)
class SkillInTree(SkillView):
    """A skill with its place in the tree: the skills below it, and its ancestors root first."""

    children: tuple[Skill, ...]
    path: tuple[Skill, ...]


def skill_view(skill: Skill) -> SkillView:
    """The view of a skill loaded with its aliases."""
    return _view(SkillView, skill)


def _view(view: type[SkillViewT], skill: Skill, **place: Any) -> SkillViewT:
    return view(
        id=skill.id,
        name=skill.name,
        description=skill.description,
        parent=skill.parent_id,
        aliases=tuple(alias.alias for alias in skill.aliases),
        wikidata=skill.wikidata,
        **place,
    )


def get_skill(session: Session, skill_id: str) -> SkillInTree:
    """One skill with its children (by name) and its path from the root; 404 if unknown."""
    skill = session.scalars(
        select(Skill).options(selectinload(Skill.aliases)).where(Skill.id == skill_id)
    ).first()
    if skill is None:
        raise NotFound(f"no skill {skill_id!r}")
    children = tuple(
        session.scalars(select(Skill).where(Skill.parent_id == skill_id).order_by(Skill.name))
    )
    path: list[Skill] = []
    current = skill.parent_id
    while current is not None:
        ancestor = session.get_one(Skill, current)
        path.insert(0, ancestor)
        current = ancestor.parent_id
    return _view(SkillInTree, skill, children=children, path=tuple(path))


def _check_parent(
    tree: dict[str, str | None], skill_id: str, parent: str | None, loc: Sequence[str]
) -> None:
    if parent is None:
        return
    if parent not in tree:
        raise Invalid(f"unknown parent skill {parent!r}", [field_error(loc, "unknown skill")])
    if parent in subtree_ids(tree, skill_id):
        raise Invalid(
            f"{parent!r} is {skill_id!r} or below it: that would make a cycle",
            [field_error(loc, "a skill cannot be placed under itself or its descendants")],
        )
    depth = depth_of(tree, parent) + (_height(tree, skill_id) if skill_id in tree else 1)
    if depth > MAX_SKILL_DEPTH:
        raise Invalid(
            f"the taxonomy is at most {MAX_SKILL_DEPTH} levels deep",
            [field_error(loc, f"placing it here would make it {depth} levels deep")],
        )


def _set_aliases(skill: Skill, aliases: Iterable[str]) -> None:
    skill.aliases = [
        SkillAlias(skill_id=skill.id, position=position, alias=alias)
        for position, alias in enumerate(aliases)
    ]


def create_skill(session: Session, data: SkillCreate) -> Skill:
    """Add a skill; 409 if its id exists, 422 for an unknown parent or a fourth level."""
    tree = parents(session)
    if data.id in tree:
        raise Conflict(f"a skill with id {data.id!r} already exists")
    _check_parent(tree, data.id, data.parent, ["body", "parent"])
    skill = Skill(
        id=data.id,
        name=data.name,
        description=data.description,
        parent_id=data.parent,
        wikidata=data.wikidata,
        aliases=[],
    )
    session.add(skill)
    _set_aliases(skill, data.aliases)
    session.flush()
    return skill


def update_skill(session: Session, skill_id: str, data: SkillUpdate) -> Skill:
    """Change the fields given; a skill becomes a root area only by ``root: true``."""
    skill = session.scalars(
        select(Skill).options(selectinload(Skill.aliases)).where(Skill.id == skill_id)
    ).first()
    if skill is None:
        raise NotFound(f"no skill {skill_id!r}")
    changes = data.model_dump(exclude_unset=True)
    if changes.get("root"):
        skill.parent_id = None
    elif "parent" in changes:
        _check_parent(parents(session), skill_id, changes["parent"], ["body", "parent"])
        skill.parent_id = changes["parent"]
    for field in ("name", "description"):
        if changes.get(field) is not None:
            setattr(skill, field, changes[field])
    if "wikidata" in changes:
        skill.wikidata = changes["wikidata"]
    if changes.get("aliases") is not None:
        _set_aliases(skill, changes["aliases"])
        session.flush()
    session.flush()
    return skill


def export_skills(session: Session) -> list[dict[str, Any]]:
    """The whole taxonomy, parents before children, as the entries of an import file."""
    skills = {
        skill.id: skill
        for skill in session.scalars(select(Skill).options(selectinload(Skill.aliases)))
    }
    tree = {skill_id: skill.parent_id for skill_id, skill in skills.items()}
    ordered = sorted(skills, key=lambda skill_id: (depth_of(tree, skill_id), skill_id))
    return [_file_entry(skill_view(skills[skill_id])) for skill_id in ordered]


def _file_entry(view: SkillView) -> dict[str, Any]:
    # The file's own data (JSON objects, as ``capex skills export`` writes them).
    return {**asdict(view), "aliases": list(view.aliases)}


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int


_entries = TypeAdapter(list[SkillCreate])


def import_skills(session: Session, documents: Any) -> ImportResult:
    """Create or update skills from the export format; all or nothing."""
    try:
        entries = _entries.validate_python(documents)
    except ValidationError as error:
        raise Invalid(
            "the file is not a list of skills",
            [field_error([str(p) for p in e["loc"]], e["msg"]) for e in error.errors()],
        ) from error
    created = updated = 0
    existing = set(parents(session))
    for index, entry in enumerate(entries):
        if entry.id not in existing:
            try:
                create_skill(session, entry)
            except Invalid as error:
                raise Invalid(
                    f"skill {index} ({entry.id!r}): {error.detail}",
                    [field_error([str(index), *e["loc"][1:]], e["msg"]) for e in error.errors],
                ) from error
            existing.add(entry.id)
            created += 1
        else:
            # A file's parentless entry is a root area: that is what the file says.
            placement = {"parent": entry.parent} if entry.parent else {"root": True}
            update_skill(
                session,
                entry.id,
                SkillUpdate.model_validate(
                    {
                        "name": entry.name,
                        "description": entry.description,
                        "aliases": entry.aliases,
                        "wikidata": entry.wikidata,
                        **placement,
                    }
                ),
            )
            updated += 1
    return ImportResult(created, updated)
