"""The movement's regions, as the Wikimedia Foundation groups affiliates and grants."""

REGIONS: dict[str, str] = {
    "cee": "Central & Eastern Europe and Central Asia",
    "eseap": "East, Southeast Asia and the Pacific",
    "lac": "Latin America and the Caribbean",
    "mena": "Middle East and North Africa",
    "na": "North America",
    "nwe": "Northern and Western Europe",
    "sa": "South Asia",
    "ssa": "Sub-Saharan Africa",
}
