"""One spelling per email address: the form accounts are stored, looked up and counted under.

Mail servers fold spellings we must fold too, or one inbox counts as many: Unicode variants
(example.com in fullwidth letters, U+FF41 and on, is example.com once normalised: NFKC),
internationalised domains (IDNA: "BÜCHER.example" and "xn--bcher-kva.example" are one domain),
a quoted local part that needs no quotes ("frank"@ is frank@), case, and a trailing dot on the
domain. What cannot be
folded safely is refused with a message instead of guessed at: a local part outside plain ASCII
(servers differ in how they compare those), quotes around spaces or specials, comments, address
literals ([192.0.2.1]) and domains that are not valid host names.
"""

from __future__ import annotations

import re
import unicodedata

import idna

# RFC 5321/5322: the local part's "dot-atom" in ASCII; 64 and 254 characters at most.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
MAX_LOCAL = 64
MAX_ADDRESS = 254


class UnsafeAddress(ValueError):
    """An address we cannot bring to one spelling; the message is for the person."""


def _local_part(local: str) -> str:
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        # "frank" is frank; "fr\\ank" is frank. What still needs quotes is refused below.
        local = re.sub(r"\\(.)", r"\1", local[1:-1])
    if not local.isascii():
        raise UnsafeAddress(
            "Use an address whose part before the @ has only Latin letters, digits and . _ - + "
            "(mail servers do not agree on how to compare other characters)."
        )
    if not _DOT_ATOM.fullmatch(local) or len(local) > MAX_LOCAL:
        raise UnsafeAddress("That address has spaces, quotes or other characters we cannot accept before the @.")
    return local.lower()


def _domain(domain: str) -> str:
    domain = domain.rstrip(".")
    if domain.startswith("[") or "." not in domain:
        raise UnsafeAddress("Use an address at a domain name, like name@example.com.")
    try:
        # UTS 46 mapping (case folding, NFKC, fullwidth dots), then IDNA 2008 checks: the ASCII
        # ("xn--") form is what DNS and SMTP use, so it is the one kept.
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise UnsafeAddress("The part after the @ is not a domain name we can send mail to.") from None


def email_canonical(address: str) -> str:
    """The one spelling of `address` (lowercase, ASCII), or UnsafeAddress with a message."""
    address = unicodedata.normalize("NFKC", address.strip())
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise UnsafeAddress("Enter an email address like name@example.com.")
    canonical = f"{_local_part(local)}@{_domain(domain)}"
    if len(canonical) > MAX_ADDRESS:
        raise UnsafeAddress("That email address is too long.")
    return canonical
