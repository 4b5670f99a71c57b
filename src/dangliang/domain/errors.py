"""Domain errors: a command that the facts do not allow. Messages are bilingual (中文 / English)."""

from __future__ import annotations


class DomainError(Exception):
    """A command refused by the domain rules."""

    def __init__(self, message_zh: str, message_en: str):
        self.message_zh = message_zh
        self.message_en = message_en
        super().__init__(f"{message_zh} / {message_en}")


class RecordVoided(DomainError):
    """The service record was voided (作废); it can be neither corrected nor voided again."""


class NothingToCorrect(DomainError):
    """A correction that changes nothing."""


class InvalidValue(DomainError):
    """A value outside what the domain allows (e.g. a non-positive quantity)."""


class NotFound(DomainError):
    """What was asked for does not exist (a run, an institution, a person in a distribution)."""
