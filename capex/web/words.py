"""Words several pages share, marked for translation and translated where shown."""

from __future__ import annotations

from capex.web.i18n import N_

SKILL_LEVELS = {1: N_("basic"), 2: N_("intermediate"), 3: N_("advanced"), 4: N_("expert")}
