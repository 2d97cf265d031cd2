"""The known traps of resident matching, handled explicitly after the probabilistic score.

Fellegi–Sunter adds up independent evidence; these cases are where that goes wrong on Chinese registration
data, so each has a rule with a name that appears in the link's explanation:

- ``different-id-numbers``: two valid, consistent 居民身份证号 that are not one typo apart are two people,
  whatever else agrees (a veto).
- ``twins``: same birth date and surname, or a multiple-birth flag, but different given names (a veto).
  Newborns under their parent's name (王丽之子 and 王丽之女) are twins when their sexes differ.
- ``generation-gap``: two records of one home (a shared phone, village or street address) whose given
  names differ and whose birth years are twelve or more apart (not by a one-digit slip), with no
  identifier agreeing even within a typo, are a parent and a child (a veto).
- ``newborn-siblings``: two newborns registered under the same parent's name with birth dates more than
  a typo apart are brothers or sisters, not one baby (a veto).
- ``twin-newborn``: a newborn of twins registered under a parent's name cannot be told from either twin;
  it goes to review rather than to one of them by chance (a cap).
- ``common-name``: a common name and birth date with nothing but the county or less to go on is not
  enough to link automatically; the pair goes to review instead (a cap).
- A valid ID number whose birth date or sex contradicts its record is *doubtful* (:mod:`features`), and one
  whose birth year is a generation away (a newborn under the mother's number) is not the person's at all.
"""

from __future__ import annotations

from rapidfuzz.distance import JaroWinkler

from rhip.empi.features import TRUSTED, Features
from rhip.empi.normalize.idnumber import one_slip

# A name carried by more than 1 in 5,000 residents counts as common (王伟, 张伟, 李娜).
COMMON_NAME_SHARE = 2e-4
LATIN_GIVEN_SIMILAR = 0.85  # Latin-script given names this similar may be one name mistyped
HAN_GIVEN_SIMILAR = 0.9  # given names whose pinyin is this similar may be one name misheard


def veto(a: Features, b: Features, *, unflagged_twins: bool = True) -> str | None:
    """The name of the rule that says these two records are different people, or None.

    ``unflagged_twins``: also take same surname, birth date and home with clearly different given names
    for twins when no record says so (the ``cn`` profile). Chinese given names are written from the ID
    card or the resident's own words, and a homophone is the usual slip; Latin-script data replace given
    names with nicknames and variants (Bill, William), so there only a multiple-birth flag counts.
    """
    ids_agree = bool(a.id_number) and a.id_number == b.id_number and a.id_trust and b.id_trust
    if (
        a.id_trust == TRUSTED
        and b.id_trust == TRUSTED
        and a.id_number != b.id_number
        and not one_slip(a.id_number, b.id_number)
    ):
        return "different-id-numbers"
    cards_agree = any(c in b.cards for c in a.cards)
    if ids_agree or cards_agree:
        return None
    if (
        _generation_apart(a.birth_date, b.birth_date)
        and not _near_cards(a, b)
        and _given_differs(a, b)
        and _same_home(a, b)
    ):
        return "generation-gap"
    if (
        a.placeholder
        and a.placeholder == b.placeholder
        and a.birth_date
        and b.birth_date
        and a.birth_date != b.birth_date
        and not one_slip(a.birth_date, b.birth_date)
    ):
        return "newborn-siblings"
    if a.birth_date and a.birth_date == b.birth_date:
        if a.placeholder and b.placeholder:
            if a.placeholder == b.placeholder and a.sex and b.sex and a.sex != b.sex:
                return "twins"
        elif _given_differs(a, b):
            twins = a.multiple_birth or b.multiple_birth
            same_family = bool(a.family_pinyin) and a.family_pinyin == b.family_pinyin
            if twins or (unflagged_twins and same_family and _same_home(a, b)):
                return "twins"
    return None


def cap(a: Features, b: Features, name_share: float | None) -> str | None:
    """The name of the rule that keeps this pair from linking automatically (review instead), or None."""
    if (a.multiple_birth or b.multiple_birth) and (a.placeholder or b.placeholder):
        ids_agree = a.id_number and a.id_number == b.id_number and a.id_trust and b.id_trust
        if not ids_agree and not any(c in b.cards for c in a.cards):
            return "twin-newborn"
    if name_share is None or name_share < COMMON_NAME_SHARE or a.name != b.name:
        return None
    if a.id_number and a.id_number == b.id_number and a.id_trust and b.id_trust:
        return None
    if any(c in b.cards for c in a.cards) or any(p in b.phones for p in a.phones):
        return None
    if a.village and a.village == b.village:
        return None
    return "common-name"


def _generation_apart(x: str, y: str) -> bool:
    """Birth years twelve or more apart, and not by a slip of one digit (1956 for 1996)."""
    if len(x) < 4 or len(y) < 4 or not x[:4].isdigit() or not y[:4].isdigit():
        return False
    if abs(int(x[:4]) - int(y[:4])) < 12:
        return False
    return not one_slip(x, y)


def _near_cards(a: Features, b: Features) -> bool:
    """A person-level card of the same kind one typo apart."""
    return any(k == kb and one_slip(v, vb) for k, v in a.cards for kb, vb in b.cards)


def _given_differs(a: Features, b: Features) -> bool:
    """Clearly different given names: not equal, not swapped, not homophones or near-homophones, not a typo."""
    if not a.given or not b.given:
        return False
    if a.given in (b.given, b.family) or (a.given_pinyin and a.given_pinyin == b.given_pinyin):
        return False
    if a.given.isascii() and b.given.isascii():
        return float(JaroWinkler.normalized_similarity(a.given, b.given)) < LATIN_GIVEN_SIMILAR
    # 静/晶 are homophones, 金/晶 (jin/jing) near-homophones that desks confuse as often.
    return float(JaroWinkler.normalized_similarity(a.given_pinyin, b.given_pinyin)) < HAN_GIVEN_SIMILAR


def _same_home(a: Features, b: Features) -> bool:
    if a.village and a.village == b.village:
        return True
    if (
        a.street
        and a.street == b.street
        and a.house == b.house
        and (a.postcode == b.postcode or a.city == b.city)
    ):
        return True
    return any(p in b.phones for p in a.phones)
