"""Who the synthetic leads are: a contact name, a company and an e-mail per lead.

Plausible and deterministic per seed, and drawn from a random stream of their own (seeded
from the CRM's seed and a fixed salt), never from the generator's: adding these columns
leaves every other column of the CRM, and so every model figure, exactly as it was. Names
follow the lead's country, company names its industry; nothing here carries signal about
conversion (pure noise for a model, which never reads them: they are display columns).
"""

from __future__ import annotations

import unicodedata

import numpy as np

from leadscore.synthetic.vocabulary import COUNTRIES, INDUSTRIES

CONTACT_SALT = 0x636F6E74616374  # "contact": the stream's fixed salt beside the seed

FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "US": ("James", "Mary", "Robert", "Jennifer", "Michael", "Linda", "David", "Emily",
           "Daniel", "Ashley", "Kevin", "Megan", "Brian", "Rachel", "Tyler", "Nicole"),
    "GB": ("Oliver", "Amelia", "Harry", "Isla", "George", "Ava", "Jack", "Sophie",
           "Thomas", "Grace", "William", "Lucy", "Charlie", "Freya", "Alfie", "Poppy"),
    "DE": ("Lukas", "Anna", "Jonas", "Lea", "Felix", "Hannah", "Maximilian", "Sophie",
           "Paul", "Marie", "Leon", "Julia", "Tobias", "Katrin", "Jürgen", "Sabine"),
    "FR": ("Louis", "Camille", "Hugo", "Léa", "Lucas", "Chloé", "Théo", "Manon",
           "Nathan", "Inès", "Julien", "Élodie", "Antoine", "Margaux", "Rémi", "Céline"),
    "NL": ("Daan", "Emma", "Sem", "Julia", "Lucas", "Tess", "Bram", "Sanne",
           "Thijs", "Fleur", "Jeroen", "Anouk", "Ruben", "Lotte", "Niels", "Maartje"),
    "IN": ("Aarav", "Priya", "Vivaan", "Ananya", "Arjun", "Diya", "Rohan", "Kavya",
           "Ishaan", "Neha", "Rahul", "Pooja", "Vikram", "Sneha", "Aditya", "Meera"),
    "BR": ("João", "Ana", "Pedro", "Beatriz", "Lucas", "Mariana", "Gabriel", "Larissa",
           "Rafael", "Camila", "Mateus", "Juliana", "Thiago", "Fernanda", "Gustavo", "Letícia"),
    "NG": ("Chinedu", "Ngozi", "Emeka", "Adaeze", "Tunde", "Funmilayo", "Ibrahim", "Aisha",
           "Oluwaseun", "Chiamaka", "Segun", "Yetunde", "Obinna", "Zainab", "Kelechi", "Amaka"),
}  # fmt: skip
"""First names by the lead's country (its true one: the observable column has gaps)."""

LAST_NAMES: dict[str, tuple[str, ...]] = {
    "US": ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Garcia",
           "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Lee", "Clark"),
    "GB": ("Smith", "Jones", "Taylor", "Brown", "Evans", "Walker", "Wright", "Robinson",
           "Thompson", "Hughes", "Edwards", "Green", "Hall", "Wood", "Harris", "Clarke"),
    "DE": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
           "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann"),
    "FR": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
           "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garnier", "Fournier"),
    "NL": ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser",
           "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks"),
    "IN": ("Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair",
           "Mehta", "Joshi", "Rao", "Desai", "Chopra", "Bose", "Menon", "Agarwal"),
    "BR": ("Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira",
           "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Araújo", "Barbosa"),
    "NG": ("Okafor", "Adeyemi", "Okonkwo", "Bello", "Eze", "Abubakar", "Nwosu", "Balogun",
           "Ogunleye", "Musa", "Obi", "Adebayo", "Chukwu", "Lawal", "Nnamdi", "Afolabi"),
}  # fmt: skip
"""Last names by country."""

COMPANY_STEMS: tuple[str, ...] = (
    "Acorn", "Alder", "Apex", "Arbor", "Beacon", "Birch", "Blue Harbor", "Brightwater",
    "Cedar", "Clearview", "Cobalt", "Copper", "Crescent", "Delta", "Evergreen", "Falcon",
    "Fjord", "Granite", "Harbor", "Helix", "Horizon", "Iron Bridge", "Juniper", "Keystone",
    "Lakeside", "Lumen", "Maple", "Meridian", "Northwind", "Oakridge", "Orbit", "Pinnacle",
    "Polaris", "Quarry", "Redwood", "Riverbend", "Sable", "Silverline", "Summit", "Tidewater",
    "Trident", "Vantage", "Vertex", "Willow", "Zenith", "Aurora", "Bluebird", "Cascade",
)  # fmt: skip
"""First words of company names."""

COMPANY_WORDS: dict[str, tuple[str, ...]] = {
    "software": ("Software", "Labs", "Systems", "Cloud", "Technologies", "Digital"),
    "fintech": ("Pay", "Capital", "Finance", "Ledger", "Payments", "Money"),
    "healthcare": ("Health", "Medical", "Care", "Clinics", "Diagnostics", "Therapeutics"),
    "manufacturing": ("Industries", "Manufacturing", "Engineering", "Components", "Works",
                      "Fabrication"),
    "retail": ("Retail", "Stores", "Market", "Outfitters", "Goods", "Shop"),
    "education": ("Learning", "Academy", "Education", "Institute", "Schools", "Tutoring"),
    "logistics": ("Logistics", "Freight", "Shipping", "Transport", "Supply", "Couriers"),
    "public_sector": ("Council", "Authority", "Agency", "Services", "Trust", "Board"),
}  # fmt: skip
"""Second words of company names, by the lead's (true) industry."""

LEGAL_FORM: dict[str, str] = {
    "US": "Inc.", "GB": "Ltd", "DE": "GmbH", "FR": "SAS", "NL": "B.V.", "IN": "Pvt Ltd",
    "BR": "Ltda", "NG": "Ltd",
}  # fmt: skip
"""Each country's usual company suffix (public-sector bodies go without)."""

TLD: dict[str, str] = {
    "US": "com", "GB": "co.uk", "DE": "de", "FR": "fr", "NL": "nl", "IN": "in",
    "BR": "com.br", "NG": "ng",
}  # fmt: skip
"""Each country's web domain ending."""

FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com")
FREE_MAIL_SHARE = 0.12
"""Share of contacts who sign up with a personal address."""


def ascii_slug(text: str, joiner: str = "") -> str:
    """Lower-case ASCII of ``text`` for an address: accents dropped, spaces to ``joiner``."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return joiner.join(part for part in plain.lower().replace(".", " ").split() if part)


def _index(u: np.ndarray, k: int) -> np.ndarray:
    """Uniforms in [0, 1) as indices 0..k-1."""
    return np.minimum((u * k).astype(np.int64), k - 1)


def contact_columns(
    seed: int, country_codes: np.ndarray, industry_codes: np.ndarray
) -> dict[str, np.ndarray]:
    """``contact_name``, ``company_name`` and ``email`` of each lead (object arrays).

    ``country_codes`` and ``industry_codes`` index :data:`COUNTRIES` and
    :data:`INDUSTRIES` (the leads' true values). The draws come from their own stream,
    so they change nothing else of the CRM. Vectorised: words are picked by index from
    small tables whose address forms are computed once.
    """
    country = np.asarray(country_codes)
    industry = np.asarray(industry_codes)
    u = np.random.default_rng([seed, CONTACT_SALT]).random((len(country), 5))
    firsts = np.array([FIRST_NAMES[c] for c in COUNTRIES], dtype=object)
    lasts = np.array([LAST_NAMES[c] for c in COUNTRIES], dtype=object)
    words = np.array([COMPANY_WORDS[i] for i in INDUSTRIES], dtype=object)
    stems = np.array(COMPANY_STEMS, dtype=object)
    slug = np.vectorize(ascii_slug, otypes=[object])  # over the tables, not the leads
    i_first = _index(u[:, 0], firsts.shape[1])
    i_last = _index(u[:, 1], lasts.shape[1])
    i_stem = _index(u[:, 2], len(stems))
    i_word = _index(u[:, 3], words.shape[1])
    first, last = firsts[country, i_first], lasts[country, i_last]
    stem, word = stems[i_stem], words[industry, i_word]
    public = industry == INDUSTRIES.index("public_sector")
    form = np.array([LEGAL_FORM[c] for c in COUNTRIES], dtype=object)[country]
    tld = np.array([TLD[c] for c in COUNTRIES], dtype=object)[country]
    local = slug(firsts)[country, i_first] + "." + slug(lasts, ".")[country, i_last]
    domain = slug(stems)[i_stem] + slug(words)[industry, i_word] + "." + tld
    free = np.array(FREE_MAIL, dtype=object)[_index(u[:, 4] / FREE_MAIL_SHARE, len(FREE_MAIL))]
    return {
        "contact_name": first + " " + last,
        "company_name": stem + " " + word + np.where(public, "", " " + form),
        "email": local + "@" + np.where(u[:, 4] < FREE_MAIL_SHARE, free, domain),
    }
