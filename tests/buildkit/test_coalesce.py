"""EventCoalescer: batches at a bounded rate, a trailing batch from the timer, nothing lost at close.

Time is a fake clock the tests move; the timer thread is waited for with bounded waits, never timed.
"""

import threading

import pytest

from envd_jupyter._proto import control_pb2
from envd_jupyter.buildkit import BuildModel, EventCoalescer

WAIT = 30  # seconds a bounded wait may take on a loaded machine before the test fails
TIMER_THREAD = "envd-event-coalescer"


class FakeClock:
    """Seconds as whole ticks, so elapsed time is exact."""

    def __init__(self, ticks_per_second: int = 1000):
        self.ticks, self._per_second = 0, ticks_per_second

    def __call__(self) -> float:
        return self.ticks / self._per_second

    def advance(self, seconds: float) -> None:
        self.ticks += round(seconds * self._per_second)


class Batches:
    """An on_batch that records each batch and the thread it ran on, and lets a test wait for them."""

    def __init__(self):
        self.batches, self.threads, self.thread_objects = [], [], []
        self._changed = threading.Condition()

    def __call__(self, batch):
        with self._changed:
            self.batches.append(batch)
            self.threads.append(threading.current_thread().name)
            self.thread_objects.append(threading.current_thread())
            self._changed.notify_all()

    def wait_for(self, count: int, *, events: bool = False) -> None:
        """Until ``count`` batches (or events) arrived; fails after WAIT seconds."""
        delivered = (lambda: len(self.events())) if events else (lambda: len(self.batches))
        with self._changed:
            assert self._changed.wait_for(lambda: delivered() >= count, timeout=WAIT), self.batches

    def events(self):
        return [event for batch in self.batches for event in batch]


def log_events(model, digest, chunks, stream=1):
    """Real log VertexEvents, as BuildModel.apply yields them from a Status response."""
    return model.apply(control_pb2.StatusResponse(logs=[
        control_pb2.VertexLog(vertex=digest, stream=stream, msg=chunk) for chunk in chunks]))


def started(model, digest):
    vertex = control_pb2.Vertex(digest=digest, name=digest)
    vertex.started.FromSeconds(1_700_000_000)
    (event,) = model.apply(control_pb2.StatusResponse(vertexes=[vertex]))
    return event


def logged(events) -> bytes:
    return b"".join(event.log.data for event in events if event.kind == "log")


def test_rate_is_bounded_and_close_delivers_the_rest_at_once():
    clock, batches, model = FakeClock(), Batches(), BuildModel()
    a, b, c, d = log_events(model, "sha256:a", [b"a"]) + log_events(model, "sha256:b", [b"b", b"c", b"d"])
    coalescer = EventCoalescer(batches, max_per_second=10, clock=clock, collapse_logs=False, timer=False)
    coalescer(a)
    assert coalescer.flush_due() and batches.batches == [[a]]  # the first batch goes out at once
    clock.advance(0.05)
    coalescer(b)
    clock.advance(0.04)
    coalescer(c)
    assert not coalescer.flush_due(), "0.09 s after the last delivery, at 10 per second"
    clock.advance(0.01)
    assert coalescer.flush_due() and batches.batches == [[a], [b, c]]
    assert not coalescer.flush_due(), "nothing waiting"
    clock.advance(0.05)
    coalescer(d)
    assert not coalescer.flush_due()
    coalescer.close()
    assert batches.batches == [[a], [b, c], [d]]


def test_timer_delivers_a_trailing_batch_without_another_event():
    clock, batches, model = FakeClock(), Batches(), BuildModel()
    first, trailing = log_events(model, "sha256:a", [b"one\n"]) + log_events(model, "sha256:b", [b"two\n"])
    with EventCoalescer(batches, max_per_second=10, clock=clock) as coalescer:
        coalescer(first)
        batches.wait_for(1)
        clock.advance(0.01)
        coalescer(trailing)
        clock.advance(0.09)  # due now; no further event arrives to push it out
        batches.wait_for(2)
        assert batches.batches == [[first], [trailing]]
        assert batches.threads == [TIMER_THREAD, TIMER_THREAD], "the consumer never runs on the producer"
    # this coalescer's own timer thread (other tests' coalescers may still be running under the same name)
    assert not any(thread.is_alive() for thread in batches.thread_objects)


def test_the_real_clock_delivers_every_event():
    batches, model = Batches(), BuildModel()
    events = log_events(model, "sha256:a", [b"x\n", b"y\n", b"z\n"], stream=2)
    with EventCoalescer(batches, max_per_second=50, collapse_logs=False) as coalescer:
        for event in events:
            coalescer(event)
        batches.wait_for(3, events=True)
    assert batches.events() == events and set(batches.threads) == {TIMER_THREAD}


def test_consecutive_logs_of_one_vertex_and_stream_collapse_without_losing_bytes():
    batches, model = Batches(), BuildModel()
    events = (log_events(model, "sha256:a", [b"a1", b"a2\n", b"\xe2\x82"]) + log_events(model, "sha256:a", [b"\xac"])
              + log_events(model, "sha256:a", [b"err"], stream=2) + log_events(model, "sha256:b", [b"b1"])
              + [started(model, "sha256:c")] + log_events(model, "sha256:b", [b"b2", b"b3"]))
    coalescer = EventCoalescer(batches, clock=FakeClock(), timer=False)
    for event in events:
        coalescer(event)
    coalescer.close()
    (batch,) = batches.batches
    assert [(e.kind, e.vertex.digest, e.log and (e.log.stream, e.log.data)) for e in batch] == [
        ("log", "sha256:a", (1, "a1a2\n€".encode())), ("log", "sha256:a", (2, b"err")),
        ("log", "sha256:b", (1, b"b1")), ("started", "sha256:c", None), ("log", "sha256:b", (1, b"b2b3"))]
    assert batch[0].log.timestamp == events[0].log.timestamp
    assert batch[0].to_dict()["log"]["text"] == "a1a2\n€", "a character split across chunks is whole again"
    assert logged(batch) == logged(events)


@pytest.mark.parametrize("timer", [False, True], ids=["punctual-caller", "timer-thread"])
def test_a_flood_of_log_events_arrives_whole_in_few_deliveries(timer):
    """100,000 log events at 10,000 a second (fake time): every byte arrives; deliveries follow the rate."""
    ticks_per_second, rate = 10_000, 10
    clock, batches, model = FakeClock(ticks_per_second), Batches(), BuildModel()
    events = log_events(model, "sha256:noisy", [f"line {i}\n".encode() for i in range(100_000)])
    coalescer = EventCoalescer(batches, max_per_second=rate, clock=clock, timer=timer)
    for event in events:
        coalescer(event)
        if not timer:
            coalescer.flush_due()  # a timer that never sleeps late: the most deliveries the rate allows
        clock.advance(1 / ticks_per_second)
    before_close = len(batches.batches)
    coalescer.close()
    # The timer may deliver once more while close() waits for it: count the threads instead.
    timed = batches.threads.count(TIMER_THREAD) if timer else before_close
    assert logged(batches.events()) == logged(events)
    assert timed <= clock() * rate + 1
    assert len(batches.batches) - timed <= 1, "close() adds at most one final batch"
    assert all(len(batch) == 1 for batch in batches.batches), "one vertex's log collapses to one event a batch"
    if not timer:
        assert timed == rate * 10, "a punctual caller gets exactly one batch per interval"


def test_producers_on_many_threads_lose_nothing_and_keep_their_order():
    batches, model = Batches(), BuildModel()
    streams = {f"sha256:{n}": log_events(model, f"sha256:{n}", [f"{n}:{i}\n".encode() for i in range(5_000)])
               for n in range(4)}
    with EventCoalescer(batches, max_per_second=1000) as coalescer:
        producers = [threading.Thread(target=lambda events=events: [coalescer(e) for e in events])
                     for events in streams.values()]
        for producer in producers:
            producer.start()
        for producer in producers:
            producer.join(WAIT)
            assert not producer.is_alive()
    delivered = batches.events()
    for digest, events in streams.items():
        assert logged(e for e in delivered if e.vertex.digest == digest) == logged(events)


class WidgetBroke(Exception):
    pass


def test_a_failing_consumer_reaches_the_producer_and_close():
    model, calls = BuildModel(), []
    a, b = log_events(model, "sha256:a", [b"a"]) + log_events(model, "sha256:b", [b"b"])

    def broken(batch):
        calls.append(batch)
        raise WidgetBroke("redraw failed")

    coalescer = EventCoalescer(broken, clock=FakeClock(), timer=False)
    coalescer(a)
    with pytest.raises(WidgetBroke):
        coalescer.flush_due()
    with pytest.raises(WidgetBroke):
        coalescer(b)
    with pytest.raises(WidgetBroke):
        coalescer.close()
    assert calls == [[a]], "a broken consumer is not called again"


def test_a_consumer_failing_on_the_timer_thread_surfaces_at_close():
    model, reached = BuildModel(), threading.Event()

    def broken(batch):
        reached.set()
        raise WidgetBroke("redraw failed")

    coalescer = EventCoalescer(broken)
    coalescer(log_events(model, "sha256:a", [b"a"])[0])
    assert reached.wait(WAIT)
    with pytest.raises(WidgetBroke):
        coalescer.close()


def test_events_after_close_are_delivered_at_once():
    batches, model = Batches(), BuildModel()
    late, = log_events(model, "sha256:a", [b"late"])
    coalescer = EventCoalescer(batches, clock=FakeClock())
    coalescer.close()
    coalescer(late)
    assert batches.batches == [[late]] and batches.threads == [threading.current_thread().name]


def test_rate_must_be_positive():
    with pytest.raises(ValueError, match="max_per_second"):
        EventCoalescer(print, max_per_second=0)
