"""What a request may say (pure): ids, history queries and pin bodies, each mistake one BadRequest line."""

from __future__ import annotations

import pytest

from envd_jupyter.server._errors import BadRequest
from envd_jupyter.server._requests import HistoryQuery, build_id, builder_name, history_query, pin_body


@pytest.mark.parametrize("text", ["..", "../etc", "/etc/passwd", "a/b", "", "a b", "é", ".hidden", "-x", "a" * 65,
                                  "a\nb", "a%2Fb"])
def test_builder_names_that_could_be_anything_else_are_refused(text):
    with pytest.raises(BadRequest, match="^builder: "):
        builder_name(text)


@pytest.mark.parametrize("text", ["current", "docker-26.classic", "b_2"])
def test_builder_names(text):
    assert builder_name(text) == text


def test_build_ids():
    assert build_id("xmik0cuiel9k6wz2g3b1r7aqd") == "xmik0cuiel9k6wz2g3b1r7aqd"
    assert build_id("local-3f2a") == "local-3f2a"
    for bad in ("..", "../x", "a" * 129, "", "a\x00"):
        with pytest.raises(BadRequest, match="^id: "):
            build_id(bad)


def test_a_history_query_with_everything_and_the_token():
    query = history_query({"builder": [b"current"], "status": [b"failed"], "name": [b"app"], "offset": [b"100"],
                           "limit": [b"500"], "token": [b"secret"]})
    assert query == HistoryQuery(builder="current", status="failed", name="app", offset=100, limit=500)


def test_empty_values_mean_unfiltered():
    assert history_query({"builder": [b""], "status": [b""], "limit": [b""]}) == HistoryQuery()


def test_jupyterlabs_bare_timestamp_is_accepted_but_a_valued_number_is_not():
    assert history_query({"1733130000000": [b""], "limit": [b"5"]}) == HistoryQuery(limit=5)
    with pytest.raises(BadRequest, match="unknown parameter"):
        history_query({"1733130000000": [b"x"]})


@pytest.mark.parametrize("arguments, mistake", [
    ({"limit": [b"0"]}, "limit"), ({"limit": [b"+5"]}, "limit"), ({"limit": ["٣".encode()]}, "limit"),
    ({"offset": [b"1000000001"]}, "offset"), ({"status": [b"OK"]}, "status"), ({"name": [b"\xff"]}, "name: not UTF-8"),
    ({"builder": [b"a", b"b"]}, "given 2 times"), ({"sort": [b"created"]}, "unknown parameter 'sort'"),
])
def test_history_query_mistakes(arguments, mistake):
    with pytest.raises(BadRequest) as refused:
        history_query(arguments)
    assert mistake in str(refused.value) and "\n" not in str(refused.value)


def test_a_long_value_is_shown_cut():
    with pytest.raises(BadRequest) as refused:
        history_query({"status": [b"x" * 1000]})
    assert len(str(refused.value)) < 120


def test_pin_bodies():
    assert pin_body(b'{"pinned": true}') is True and pin_body(b' {"pinned": false} ') is False
    for bad in (b"", b"null", b'{"pinned": null}', b'{"Pinned": true}', b'{"pinned": 0}'):
        with pytest.raises(BadRequest, match="^body: "):
            pin_body(bad)
