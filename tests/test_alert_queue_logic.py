"""The queue's rules on their own (queue.py is plain data): bounds, time, and its stored form.

The socket-level tests (test_alert_queue.py) show the same rules through real
overlays; here the clock is in the test's hands, so leases and expiry need no
waiting.
"""

from __future__ import annotations

from notification_service.alerts import queue
from notification_service.alerts.queue import CodeQueue, Connection


def overlay(name: str, sid: str | None = None, **options) -> Connection:
    return Connection(name, sid or f"sid-{name}", "node", **options)


def test_a_code_has_room_for_sixteen_connected_overlays_and_forgets_gone_ones_first():
    code = CodeQueue()
    for n in range(queue.MAX_LINES):
        assert code.connect(overlay(f"ov{n}", named=True), now=100.0 + n) is not None
    assert code.connect(overlay("one-too-many", named=True), now=200.0) is None
    code.disconnect("ov3", "sid-ov3", now=201.0)
    assert code.connect(overlay("newcomer", named=True), now=202.0) is not None
    assert "ov3" not in code.lines and len(code.lines) == queue.MAX_LINES


def test_a_line_takes_at_most_its_bound_and_says_full():
    code = CodeQueue()
    line = code.connect(overlay("ov"), now=0.0)
    for n in range(queue.MAX_WAITING + 3):
        code.enqueue(f"e-{n}", "FOLLOW", {"n": n}, time=1.0, now=1.0)
    assert len(line.waiting) == queue.MAX_WAITING
    full = [held.id for held in code.alerts.values() if held.outcomes.get("ov") == "full"]
    assert full == [f"e-{n}" for n in range(queue.MAX_WAITING, queue.MAX_WAITING + 3)]


def test_leases_and_waiting_expire_with_the_clock():
    code = CodeQueue()
    line = code.connect(overlay("ov"), now=0.0)
    code.enqueue("e-1", "FOLLOW", {}, time=0.0, now=0.0)
    code.enqueue("e-2", "FOLLOW", {}, time=0.0, now=0.0)
    assert code.next(line, [], now=1.0)["play"]["id"] == "e-1"
    code.expire(now=1.0 + queue.RELEASE_TIMEOUT + 0.1)  # released, never started: again
    assert line.playing is None and line.waiting[0] == "e-1"
    code.next(line, [], now=20.0)
    code.started_playing(line, "e-1", duration=3.0, now=20.0)
    code.expire(now=20.0 + 3.0 + queue.FINISH_GRACE - 0.1)
    assert line.playing == "e-1"
    code.expire(now=20.0 + 3.0 + queue.FINISH_GRACE + 0.1)  # started: counts as shown
    assert line.playing is None and code.alerts["e-1"].outcomes == {"ov": "played"}
    code.expire(now=queue.MAX_WAIT_SECONDS + 1.0)  # e-2 waited too long
    assert line.waiting == [] and code.alerts["e-2"].outcomes == {"ov": "expired"}


def test_a_large_event_is_played_from_the_delivered_copy_but_not_held():
    code = CodeQueue()
    line = code.connect(overlay("ov"), now=0.0)
    code.enqueue("e-1", "FOLLOW", {"blob": "x" * (queue.MAX_HELD_DATA + 1)}, time=0.0, now=0.0)
    have = [{"id": "e-1", "name": "FOLLOW", "time": 0.0}]
    assert code.next(line, have, now=0.0)["play"] == {"id": "e-1", "event": "FOLLOW", "time": 0.0}
    assert code.alerts["e-1"].data_json is None


def test_an_alert_the_observer_missed_joins_when_the_overlay_has_it():
    """Published on another node a moment ago: the overlay was delivered it first."""
    code = CodeQueue(modes={"HOST": "skip_if_busy"})
    line = code.connect(overlay("ov"), now=10.0)
    early = [{"id": "old-1", "name": "FOLLOW", "time": 9.0}]  # before the line existed: never
    assert "play" not in code.next(line, early, now=10.0)
    have = [{"id": "e-5", "name": "FOLLOW", "time": 10.5}]
    answer = code.next(line, have, now=11.0, history={"e-5": {"user": "ann"}})
    assert answer["play"]["id"] == "e-5" and "data" not in answer["play"]
    assert code.enqueue("e-5", "FOLLOW", {"user": "ann"}, time=10.5, now=11.0) == 0  # no twice


def test_the_stored_form_round_trips_and_a_restart_disconnects_everyone():
    code = CodeQueue(paused=True, modes={"RAID": "interrupt"})
    line = code.connect(overlay("ov", events=["FOLLOW"], hidden="drop"), now=0.0)
    code.enqueue("e-1", "FOLLOW", {"user": "ann"}, time=0.0, now=0.0)
    code.enqueue("e-2", "FOLLOW", {"user": "bob"}, time=0.0, now=0.0)
    code.paused = False
    code.next(line, [], now=0.0)
    code.started_playing(line, "e-1", 5.0, now=0.0)
    again = CodeQueue.from_json(code.to_json())
    assert again.to_json() == code.to_json()
    again.after_restart(now=1.0)
    restored = again.lines["ov"]
    assert (restored.connected, restored.playing, restored.waiting) == (False, None, ["e-2"])
    assert again.alerts["e-1"].outcomes == {"ov": "played"}


def test_alerts_written_out_of_order_by_two_nodes_play_in_publish_order():
    """e-2's write (node B) lands before e-1's (node A): the line still plays e-1 first."""
    code = CodeQueue()
    line = code.connect(overlay("ov"), now=0.0)
    code.enqueue("e-2", "FOLLOW", {"n": 2}, time=10.2, now=10.3)
    # The overlay asks before it has anything: a young alert it lacks is not released.
    assert code.next(line, [], now=10.3, settle=1.0) == {"paused": False, "done": [],
                                                          "retry": 0.9}
    code.enqueue("e-1", "FOLLOW", {"n": 1}, time=10.1, now=10.35)
    assert line.waiting == ["e-1", "e-2"]  # in publish order, whatever order the writes came
    have = [{"id": "e-1", "name": "FOLLOW", "time": 10.1},
            {"id": "e-2", "name": "FOLLOW", "time": 10.2}]
    assert code.next(line, have, now=10.4, settle=1.0)["play"]["id"] == "e-1"
    code.finished(line, "e-1", "played")
    # Past the settle time an alert the overlay lacks plays from the queue's copy.
    answer = code.next(line, [], now=11.3, settle=1.0)
    assert answer["play"]["id"] == "e-2" and answer["play"]["data"] == {"n": 2}


def test_an_alert_replayed_a_moment_after_it_played_is_released_at_once():
    code = CodeQueue()
    line = code.connect(overlay("ov"), now=0.0)
    code.enqueue("e-1", "FOLLOW", {"n": 1}, time=10.0, now=10.0)
    have = [{"id": "e-1", "name": "FOLLOW", "time": 10.0}]
    assert code.next(line, have, now=10.1, settle=1.0)["play"]["id"] == "e-1"
    code.finished(line, "e-1", "played")
    code.replay("e-1", None)
    assert code.next(line, [], now=10.3, settle=1.0)["play"]["id"] == "e-1"
