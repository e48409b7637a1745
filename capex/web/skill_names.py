"""The taxonomy as a person types it into a form: a skill by its id, name or alias, in any
case (the profile editor and the console's round form share it)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from capex.services import skills as skill_service
from capex.services.skills import SkillView


class SkillNames:
    """The taxonomy as a person may type it: an id, a name or an alias, in any case."""

    def __init__(self, skills: Sequence[SkillView]) -> None:
        self.skills = skills
        self.names = {skill.id: skill.name for skill in skills}
        typed: dict[str, str] = {}
        for skill in skills:
            for alias in skill.aliases:
                typed.setdefault(alias.casefold(), skill.id)
        for skill in skills:
            typed[skill.name.casefold()] = skill.id
        for skill in skills:
            typed[skill.id.casefold()] = skill.id
        self.typed = typed

    def resolve(self, text: str) -> str | None:
        return self.typed.get(" ".join(text.split()).casefold())

    def shown(self, skill_id: str) -> str:
        """How a saved skill reads in its field: its name, if the name leads back to it."""
        name = self.names.get(skill_id, skill_id)
        return name if self.resolve(name) == skill_id else skill_id


def skill_names(session: Session) -> SkillNames:
    """Every skill of the taxonomy, as a form resolves and shows it."""
    skills = skill_service.list_skills(session, limit=100_000)
    return SkillNames([skill_service.skill_view(skill) for skill in skills])
