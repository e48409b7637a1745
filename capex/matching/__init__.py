"""The matching engine: who can teach me this, and who wants to learn what I offer.

Pure numpy, scipy.sparse and scikit-learn; it takes plain records and returns plain matches,
and never imports the web framework, the ORM or ``capex.models``. Formulas, exclusions and
data structures: ``docs/matching.md``.
"""

from capex.matching.availability import (
    availability_bitmap,
    next_week_start,
    overlap_minutes,
    wall_clock_table,
)
from capex.matching.candidates import Candidates
from capex.matching.index import MatchIndex
from capex.matching.reference import ReferenceMatcher
from capex.matching.taxonomy import SkillSpace
from capex.matching.types import (
    AvailabilityChange,
    LanguageChange,
    Match,
    ProfileChange,
    Role,
    SkillChange,
    SkillExplanation,
    Suggestion,
    VolunteerRecord,
)

__all__ = [
    "AvailabilityChange",
    "Candidates",
    "LanguageChange",
    "Match",
    "MatchIndex",
    "ProfileChange",
    "ReferenceMatcher",
    "Role",
    "SkillChange",
    "SkillExplanation",
    "SkillSpace",
    "Suggestion",
    "VolunteerRecord",
    "availability_bitmap",
    "next_week_start",
    "overlap_minutes",
    "wall_clock_table",
]
