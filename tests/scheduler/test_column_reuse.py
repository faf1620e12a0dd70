"""Per-report scorers: their column is reused only while the reports and reservations are equal."""

from dataclasses import replace

from envd_jupyter.scheduler import Endpoint, Scheduler, Scorer, register

from .helpers import chain, request, single_profile

SCORED: list[int] = []


@register("test-per-report-scorer")
class PerReportScorer(Scorer):
    """Free-disk share, logging how many endpoints it actually scored."""

    bounded = True
    per_report = True

    def score(self, cycle, endpoints):
        SCORED.append(len(endpoints))
        return [e.disk_free_bytes / e.disk_total_bytes for e in endpoints]


CONFIG = single_profile(
    "- type: test-per-report-scorer\n- type: in-flight-scorer",
    "  - pluginRef: test-per-report-scorer\n  - pluginRef: in-flight-scorer",
)


def pool() -> list[Endpoint]:
    return [Endpoint(f"e{i}", disk_free_bytes=10 * i + 5, disk_total_bytes=100, in_flight=i % 2) for i in range(4)]


def run(scheduler, endpoints):
    result = scheduler.schedule(request(chain("r", 2)), endpoints)
    scheduler.release(result)
    return result.records[0]


def test_unchanged_reports_reuse_the_column_and_records_stay_independent():
    SCORED.clear()
    scheduler, endpoints = Scheduler(CONFIG, seed=0), pool()
    first = run(scheduler, endpoints)
    second = run(scheduler, list(endpoints))            # same reports, new list
    third = run(scheduler, [replace(e) for e in endpoints])  # equal reports, new objects
    assert SCORED == [4]
    assert first.scorers[0].raw == second.scorers[0].raw == third.scorers[0].raw == [0.05, 0.15, 0.25, 0.35]
    first.scorers[0].raw[0] = 9.0                       # one record's numbers are its own
    assert second.scorers[0].raw[0] == 0.05 and run(scheduler, endpoints).scorers[0].raw[0] == 0.05


def test_a_new_report_or_a_reservation_recomputes():
    SCORED.clear()
    scheduler, endpoints = Scheduler(CONFIG, seed=0), pool()
    run(scheduler, endpoints)
    endpoints[2] = replace(endpoints[2], disk_free_bytes=95, version=1)
    assert run(scheduler, endpoints).scorers[0].raw == [0.05, 0.15, 0.95, 0.35]
    run(scheduler, endpoints[:3])                       # fewer candidates
    assert SCORED == [4, 4, 3]
    held = scheduler.schedule(request(chain("r", 2)), endpoints)  # reserves its pick
    busy = scheduler.schedule(request(chain("r", 2)), endpoints).records[0]
    loads = {e.name: score for e, score in zip(busy.survivors, busy.scorers[1].raw)}
    assert loads[held.endpoint.name] == 0.0              # in-flight saw the reservation
    assert SCORED == [4, 4, 3, 4, 4]
