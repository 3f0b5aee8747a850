"""Kubernetes resource quantities (``500m``, ``4Gi``, ``1e3``), parsed exactly.

The operator compares quantities in two places: a request must not exceed its limit (settings),
and a home volume may grow but never shrink (reconcile). Decimal keeps ``0.1`` exact.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(
    r"^([+-]?[0-9]+(?:\.[0-9]*)?|[+-]?\.[0-9]+)"  # the number
    r"(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"  # exponent or suffix
)


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def parse_quantity(text: str | int | float) -> Decimal:
    """The quantity's value in base units (cores, bytes)."""
    match = _QUANTITY.fullmatch(str(text).strip())
    if not match:
        raise QuantityError(f"{text!r} is not a Kubernetes quantity")
    number, exponent, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the regex only admits decimals
        raise QuantityError(f"{text!r} is not a Kubernetes quantity") from None
    if exponent:
        return value * (Decimal(10) ** int(exponent[1:]))
    return value * _SUFFIXES[suffix or ""]
