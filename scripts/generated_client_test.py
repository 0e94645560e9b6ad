"""Drives aisle through a client generated from its /openapi.json by openapi-python-client.

Run by scripts/api-fuzz.sh with the generated package `client` on PYTHONPATH, AISLE_BASE and
AISLE_KEY (an admin key) set. Fails (non-zero exit) on any unexpected answer.
"""

import os
import sys
import uuid

from client import AuthenticatedClient
from client.api.default import get_v1_dashboard, get_v1_recommend, get_v1_search, post_v1_events
from client.models import (
    Accepted,
    Dashboard,
    ErrorBody,
    EventInType0,
    EventInType0Kind,
    SearchResults,
    UserRecommendations,
)


def main() -> int:
    api = AuthenticatedClient(base_url=os.environ["AISLE_BASE"], token=os.environ["AISLE_KEY"])
    shopper = f"generated-client-{uuid.uuid4().hex[:8]}"
    events = [
        EventInType0(user=shopper, kind=EventInType0Kind.VIEW, item="196"),
        EventInType0(user=shopper, kind=EventInType0Kind.ADD_TO_CART, item="196", quantity=1.0),
    ]
    before = get_v1_dashboard.sync(client=api)
    assert isinstance(before, Dashboard), before
    key = uuid.uuid4().hex
    first = post_v1_events.sync_detailed(client=api, body=events, idempotency_key=key)
    assert first.status_code == 200 and isinstance(first.parsed, Accepted), first
    assert first.parsed.accepted == 2, first.parsed
    # The same request again: the same answer, nothing written twice.
    again = post_v1_events.sync_detailed(client=api, body=events, idempotency_key=key)
    assert again.status_code == 200 and again.parsed.accepted == 2, again
    # The same key with another body is refused.
    other = post_v1_events.sync_detailed(client=api, body=events[:1], idempotency_key=key)
    assert other.status_code == 422 and isinstance(other.parsed, ErrorBody), other
    after = get_v1_dashboard.sync(client=api)
    assert isinstance(after, Dashboard), after
    # Two events stored, not four (the fuzzer has finished: nothing else writes).
    assert after.counts.events - before.counts.events == 2, (before.counts, after.counts)

    recs = get_v1_recommend.sync(client=api, user=shopper, k=5)
    assert isinstance(recs, UserRecommendations), recs
    assert 1 <= len(recs.items) <= 5, recs
    assert len({r.id for r in recs.items}) == len(recs.items), recs

    found = get_v1_search.sync(client=api, q="milk", limit=5)
    assert isinstance(found, SearchResults), found
    assert found.total > 0 and len(found.hits) == 5, found
    assert any("milk" in h.title.lower() for h in found.hits), [h.title for h in found.hits]

    print(
        f"generated client: ingested 2 events (a retry with the same key wrote nothing, "
        f"another body got 422), {len(recs.items)} recommendations for {shopper} "
        f"(first: {recs.items[0].title!r}), search 'milk': {found.total} matches "
        f"(first: {found.hits[0].title!r})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
