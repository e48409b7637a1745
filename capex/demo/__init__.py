"""A synthetic population of volunteers that looks like the movement, for demos and benchmarks.

``populate`` writes users ``demo1`` .. ``demoN`` with profiles drawn from one seeded
``np.random.Generator``: the same seed and count give the same people. Skill popularity is
long-tailed, regions come with their own time zones, languages and names, availability is
mostly local evenings and weekend blocks, and sign-ups spread over the last two years.
Rows are written with Core bulk inserts in batches: 100,000 volunteers take ~10 s on SQLite
and ~30 s on PostgreSQL (2 cores).

The package:
    data/regions.toml, data/texts.toml  who lives where, bio templates and notes (data)
    parameters.py  every chance and choice, named (``Parameters``)
    profiles.py    the data files, read into frozen values
    sampling.py    vectorised draws the tables share
    tables.py      one generator per table, each taking the ``rng``
    rows.py        ``generate``: the tables' rows batch by batch, in the seed's order
    database.py    ``populate``: those rows written with bulk inserts
    history.py     ``write_history``: exchanges among them over the last 24 months, their
                   events and feedback (``HistoryParameters`` in parameters.py)
"""

from capex.demo.database import DEFAULT_DEMO_PASSWORD, DemoResult, populate
from capex.demo.parameters import PARAMETERS, Choice, Parameters
from capex.demo.profiles import REGION_CODES, REGION_PROFILES, RegionProfile
from capex.demo.rows import Batch, generate
from capex.demo.tables import DEMO_EMAIL_DOMAIN, Row

__all__ = [
    "DEFAULT_DEMO_PASSWORD",
    "DEMO_EMAIL_DOMAIN",
    "PARAMETERS",
    "REGION_CODES",
    "REGION_PROFILES",
    "Batch",
    "Choice",
    "DemoResult",
    "Parameters",
    "RegionProfile",
    "Row",
    "generate",
    "populate",
]
