"""The ticket view's engine call (``Core.ticket_body``, ticket_view.pxi and line_view.pxi): the estimate,
``ahead`` and the check-in rule it applies from a ``LineView``, against the rules written out here."""

from __future__ import annotations

import orjson
import pytest

from dropsvc import _engine
from dropsvc.ledger import queue

CHECK_IN_DUE, LineView = _engine.CHECK_IN_DUE, _engine.LineView

START = 1_000_000
NOW = START + 5_000


@pytest.fixture
def ann(engine, make_drop):
    """A queue drop whose one ticket (ann's, id 1) is at position 5 after the close; a function that
    sets its state, check-in and window and answers ``(drop_id, view)``, view(line, **ticket_body's)."""
    drop_id = make_drop(admission="queue", starts_at=START, per_user_limit=2)
    assert engine.join_line(drop_id, "ann", now=START - 1)[0] == "ok"
    assert engine.record_close(drop_id, now=START)

    def ticket(state: str = "waiting", position: int | None = 5, checked_in_at: int | None = None,
               admitted_until: int | None = None):
        engine.write(lambda tx: tx.execute(
            "UPDATE tickets SET state = ?, position = ?, checked_in_at = ?, admitted_until = ?"
            " WHERE drop_id = ? AND ticket_id = 1", (state, position, checked_in_at, admitted_until, drop_id)))

        def view(line: LineView, check_in: bool = False, now: int = NOW):
            body = engine.ticket_body(line, drop_id, 1, "ann", b"{", check_in, now)
            return body if body is None or body is CHECK_IN_DUE else orjson.loads(body)
        return view
    return ticket


def line(waiting=(1, 2, 3, 5), remaining=10, per_user_limit=1, admit_seconds=60, check_in_from=None,
         states=queue.LEAVABLE_STATES) -> LineView:
    return LineView(list(waiting), remaining, per_user_limit, admit_seconds, check_in_from, states)


def expected_eta(ahead: int, remaining: int, limit: int, admit_seconds: int | None) -> int | None:
    """A waiting ticket's estimate, as the ticket routes' docs say."""
    if remaining <= 0 or not admit_seconds:
        return None
    units = ahead * limit
    return 0 if units < remaining else -(-units // remaining) * admit_seconds


@pytest.mark.parametrize("remaining", [0, 1, 2, 3, 5, 6, 7, 100])
@pytest.mark.parametrize("limit", [1, 2, 3])
@pytest.mark.parametrize("admit_seconds", [None, 1, 60])
def test_a_waiting_tickets_estimate(ann, remaining, limit, admit_seconds):
    view = ann()
    shown = view(line(remaining=remaining, per_user_limit=limit, admit_seconds=admit_seconds))
    assert shown["ahead"] == 3 and shown["position"] == 5 and shown["state"] == "waiting"
    assert shown["eta_s"] == expected_eta(3, remaining, limit, admit_seconds)


@pytest.mark.parametrize(("left_ms", "eta"), [(3_600_000, 3600), (1_500, 2), (1_000, 1), (1, 1), (0, 0),
                                              (-1, 0), (-10**9, 0)])
def test_an_admitted_tickets_estimate_is_the_seconds_left_in_its_window(ann, left_ms, eta):
    shown = ann("admitted", admitted_until=NOW + left_ms)(line(remaining=0))
    assert (shown["admitted_until"], shown["eta_s"]) == (NOW + left_ms, eta)


def test_ahead_counts_the_waiting_positions_before_the_tickets(ann):
    view = ann(position=5)
    assert [view(line(waiting=waiting))["ahead"] for waiting in ([], [5], [6, 7], [1, 5], [1, 2, 4, 9], range(1, 5))] \
        == [0, 0, 0, 1, 3, 4]
    big = line(waiting=range(1, 200_001, 2))  # a long line: the odd positions
    assert ann(position=100_001)(big)["ahead"] == 50_000 and big.ahead(1) == 0 and big.ahead(None) is None
    shown = ann(position=None)(line())
    assert shown["position"] is None and shown["ahead"] is None and shown["eta_s"] is None


@pytest.mark.parametrize("state", ["used", "lapsed", "left", "sold_out", "ended", "voided", "absent"])
def test_no_estimate_outside_waiting_and_admitted(ann, state):
    assert ann(state, admitted_until=NOW + 9_000)(line())["eta_s"] is None


@pytest.mark.parametrize("state", _engine.TICKET_STATES)
def test_the_view_says_when_it_checks_the_holder_in(ann, state):
    """CHECK_IN_DUE exactly when asked to check in, from check_in_from on, in the line's check-in states,
    not checked in yet (``queue.check_in_from`` and LEAVABLE_STATES, as the ledger gives them)."""
    due = state in queue.LEAVABLE_STATES
    view = ann(state)
    assert (view(line(check_in_from=NOW), check_in=True) is CHECK_IN_DUE) == due
    assert (view(line(check_in_from=NOW - 1), check_in=True) is CHECK_IN_DUE) == due
    assert view(line(check_in_from=NOW + 1), check_in=True)["state"] == state  # not yet
    assert view(line(check_in_from=None), check_in=True)["state"] == state  # a drop without a line
    assert view(line(check_in_from=NOW), check_in=False)["state"] == state
    assert view(line(check_in_from=NOW, states=()), check_in=True)["state"] == state
    assert ann(state, checked_in_at=1)(line(check_in_from=NOW), check_in=True)["state"] == state


def test_a_line_view_holds_what_it_was_given():
    view = line(remaining=4, per_user_limit=2, admit_seconds=None, check_in_from=-5)
    assert (view.remaining, view.per_user_limit, view.admit_seconds, view.check_in_from) == (4, 2, None, -5)
    assert line(check_in_from=None).check_in_from is None and line().admit_seconds == 60
    with pytest.raises(ValueError, match="ascending"):
        line(waiting=[1, 3, 3])
    with pytest.raises(ValueError):
        line(states=("waiting", "gone"))
    with pytest.raises(TypeError):
        line(waiting=[1, "2"])
