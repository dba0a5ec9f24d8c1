"""When a lineup was first shown, kept in the worker's signed session cookie instead of the database.

A response time needs the moment the server first showed the lineup. Writing it to the database would make every
page view a write (on SQLite: a turn at the single writer lock); instead the first view of a task puts
``[assignment token, milliseconds since the epoch]`` in the session cookie, which Flask signs with the server's key,
and the answer reads it back in its own transaction. A reload finds the entry and keeps it, so a reload does not
restart the clock; a cookie the server did not sign is not a session at all; an entry for another task (an old cookie
replayed, a form from another tab) gives no time, and the answer is refused unless it is a repeat of one already
stored. The limit: the cookie is the worker's, so one who restores an older cookie and reloads restarts the clock of
the task they are on (shorter, never longer); README says so.
One entry per study, so two studies open in one browser keep their own clocks.

The entry also notes whether the task was its HIT's only unanswered one when shown: only that answer tries to close
the HIT in its own commit (hits.CLOSE_FINISHED), sparing the other answers that statement. (Tabs of one browser share
the entry and all show the first unanswered task. A HIT finished from a page shown while another of its tasks was
open, which takes a second browser answering that one meanwhile, is closed by the next task page instead.)
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import session

EPOCH = datetime(1970, 1, 1)
MILLISECOND = timedelta(milliseconds=1)


def mark_shown(slug: str, assignment_token: str, now: datetime, last: bool) -> None:
    """Note ``now`` as the time this session first showed the task, unless it already showed it; ``last``: no other
    task of its HIT was unanswered."""
    entry = session.get("shown", {}).get(slug)
    if not entry or entry[0] != assignment_token or len(entry) < 3 or bool(entry[2]) != last:
        first = entry[1] if entry and entry[0] == assignment_token else (now - EPOCH) // MILLISECOND
        session["shown"] = {**session.get("shown", {}), slug: [assignment_token, first, int(last)]}


def shown_at(slug: str, assignment_token: str) -> datetime | None:
    """When this session first showed the task being answered, or None when it never showed it."""
    entry = session.get("shown", {}).get(slug)
    if not entry or entry[0] != assignment_token:
        return None
    return EPOCH + entry[1] * MILLISECOND


def shown_last(slug: str, assignment_token: str) -> bool:
    """Whether the task was its HIT's only unanswered one when this session last showed it (True when the entry
    does not say, as an older server's did not: the answer then tries to close its HIT, as every answer once did)."""
    entry = session.get("shown", {}).get(slug)
    return not entry or entry[0] != assignment_token or len(entry) < 3 or bool(entry[2])
