"""The audit page: the log's state and verifying the chain from the browser."""

from __future__ import annotations

import re

from tests.web.conftest import Site


def test_an_auditor_verifies_the_chain_and_sees_the_log_position(site: Site) -> None:
    page = site.get("auditor", "/audit")
    assert page.status_code == 200
    head = site.service.log.head()
    assert f'id="log-head" data-value="{head}"' in page.text

    result = site.post("auditor", "/audit/verify")
    assert result.status_code == 200
    assert 'data-ok="true"' in result.text and "哈希链完整" in result.text
    verified = site.service.verify_log()
    assert f'<code id="verify-head">{verified["head"]}</code>' in result.text
    checked = re.search(r'id="verify-checked">([\d,]+)<', result.text)
    assert checked and int(checked.group(1).replace(",", "")) == verified["checked"]


def test_a_chain_head_from_a_signed_document_is_checked(sqlite_site: Site) -> None:
    right = sqlite_site.service.verify_log()["head"]
    position, _, digest = right.partition(":")
    wrong = f"{position}:{'0' * len(digest)}"
    good = sqlite_site.post("auditor", "/audit/verify", {"expected_head": right})
    bad = sqlite_site.post("auditor", "/audit/verify", {"expected_head": wrong})
    assert 'data-ok="true"' in good.text
    assert 'data-ok="false"' in bad.text and "发现问题" in bad.text
    malformed = sqlite_site.post("auditor", "/audit/verify", {"expected_head": "nonsense"})
    assert malformed.status_code == 422
