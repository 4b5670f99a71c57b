"""Deterministic aggregate ids (uuid5), so the store's own uniqueness refuses a repeated fact."""

from __future__ import annotations

from hashlib import sha1
from uuid import UUID, uuid5

# Fixed for ever: changing it would change every id in every county's log.
NAMESPACE = UUID("6f1c3d2a-9b57-4e0e-8a8b-2d7c5e1f0a11")
_NAMESPACE_BYTES = NAMESPACE.bytes


def service_record_id(institution_code: str, source_id: str) -> UUID:
    """One aggregate per service item, keyed by institution + the source system's record id.

    Institution codes cannot contain "|", so the key is unambiguous for any source id.
    """
    return uuid5(NAMESPACE, f"service-record|{institution_code}|{source_id}")


def service_record_id_hex(institution_code: str, source_id: str) -> str:
    """`service_record_id(...).hex`, computed without building UUID objects (the importer's
    hot path: 0.6 µs instead of 5 µs). RFC 4122 §4.3, exactly as `uuid.uuid5` does it."""
    return uuid5_hex(f"service-record|{institution_code}|{source_id}")


def institution_id(code: str) -> UUID:
    return uuid5(NAMESPACE, f"institution|{code}")


def staff_id(staff_code: str) -> UUID:
    return uuid5(NAMESPACE, f"staff|{staff_code}")


def catalogue_item_id(item_code: str) -> UUID:
    return uuid5(NAMESPACE, f"catalogue-item|{item_code}")


def county_policy_id() -> UUID:
    """The county's one policy aggregate (one database holds one county)."""
    return uuid5(NAMESPACE, "county-policy")


def institution_year_id(institution_code: str, year: int) -> UUID:
    return uuid5(NAMESPACE, f"institution-year|{institution_code}|{year}")


def force_majeure_id(code: str) -> UUID:
    return uuid5(NAMESPACE, f"force-majeure|{code}")


def payout_period_id(period: str) -> UUID:
    return uuid5(NAMESPACE, f"payout-period|{period}")


def staff_year_id(staff_id: str, year: int) -> UUID:
    return uuid5(NAMESPACE, f"staff-year|{staff_id}|{year}")


def api_user_id(name: str) -> UUID:
    return uuid5(NAMESPACE, f"api-user|{name.strip()}")


def insurance_policy_id() -> UUID:
    """The county's medical-insurance fund policy (医保基金政策), apart from compensation."""
    return uuid5(NAMESPACE, "insurance-policy")


def community_id(code: str) -> UUID:
    return uuid5(NAMESPACE, f"medical-community|{code}")


def community_year_id(code: str, year: int) -> UUID:
    return uuid5(NAMESPACE, f"community-year|{code}|{year}")


def fund_year_id(year: int) -> UUID:
    return uuid5(NAMESPACE, f"fund-year|{year}")


def enrolment_id(insured_ref: str, from_month: str) -> UUID:
    return uuid5(NAMESPACE, f"enrolment|{insured_ref}|{from_month}")


def enrolment_count_id(community_code: str, month: str, insurance_type: str, band: str) -> UUID:
    return uuid5(NAMESPACE, f"enrolment-count|{community_code}|{month}|{insurance_type}|{band}")


def claim_id(claim_ref: str) -> UUID:
    return uuid5(NAMESPACE, f"claim|{claim_ref}")


def uuid5_hex(name: str) -> str:
    """`uuid5(NAMESPACE, name).hex` without building UUID objects (an importer's hot path)."""
    digest = bytearray(sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return digest.hex()
