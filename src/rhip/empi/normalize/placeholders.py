"""Names that are not a person's own name: a newborn registered under a parent's name, or "name unknown".

A newborn is often registered before it is named, as 王丽之子 / 王丽之女 / 王丽婴 / 王丽大宝 (王丽 being the mother,
sometimes the father). Emergency departments register unidentified patients as 无名氏, 不详, 未知 (often with a
number or a sex: 无名男2). These must neither match nor block like real names.

A bare 子 / 女 after a name (王丽子) is recognised too, so a real three-character name ending in 子 or 女
(common among Korean-Chinese women: 金顺子) is also taken for a placeholder: callers should treat
``placeholder_of`` as a hint to confirm with the birth date.
"""

from __future__ import annotations

import re

from rhip.empi.normalize.chinese import HAN_CLASS

# The baby's marker after the parent's name (2-4 Han characters), with an optional twin number.
_NEWBORN = re.compile(
    f"(?P<parent>[{HAN_CLASS}]{{2,4}}?)"
    r"(?:之)?(?:男婴|女婴|婴儿|新生儿|宝宝|大宝|二宝|三宝|小宝|长子|长女|次子|次女|男孩|女孩|婴|子|女)"
    r"(?:[0-9]|[一二三])?"
)
_UNKNOWN = re.compile(
    r"(?:无名氏|无名|佚名|姓名不详|不详|未知|不明|未登记|unknown|anonymous|noname)"
    r"(?:[男女])?(?:[0-9]+号?)?",
    re.IGNORECASE,
)


def unknown_name(text: str) -> bool:
    """Whether the (cleaned) name says that the name is unknown: 无名氏, 不详, 未知, 无名男2, unknown."""
    return _UNKNOWN.fullmatch(text) is not None


def newborn_parent(text: str) -> str | None:
    """The parent's name in a newborn placeholder (王丽之子 -> 王丽), else None."""
    m = _NEWBORN.fullmatch(text)
    return m.group("parent") if m is not None else None
