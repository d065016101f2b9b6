"""Route parsing on raw paths, and the route table's cache and activity flushing."""

import time

import pytest

from minibinder.routes import BadRoute, RouteTable, split_route
from minibinder.store import SessionRecord, Store

ID = "0123456789abcdef"


@pytest.mark.parametrize("raw, expected", [
    (f"/user/{ID}/", (ID, f"/user/{ID}/")),
    (f"/user/{ID}/lab?token=x", (ID, f"/user/{ID}/lab?token=x")),
    (f"/user/{ID}", (ID, f"/user/{ID}")),
    (f"/user/{ID}/api/contents/a%20b.ipynb", (ID, f"/user/{ID}/api/contents/a%20b.ipynb")),
    (f"/user/{ID}/files/dir%2Ffile.txt", (ID, f"/user/{ID}/files/dir%2Ffile.txt")),
    (f"/user/{ID}/lab?path=../x", (ID, f"/user/{ID}/lab?path=../x")),
    ("/user/short/", None), ("/user/", None), ("/other", None),
    (f"/user/{ID.upper()}/", None),
])
def test_split_route(raw, expected):
    assert split_route(raw) == expected


@pytest.mark.parametrize("raw", [
    f"/user/{ID}/../x", f"/user/{ID}/%2e%2e/x", f"/user/{ID}/.%2E/x", f"/user/{ID}/./x",
    f"/user/{ID}/..", f"/user/{ID}\\x", f"/user/{ID}/%5c", f"/user/{ID[:8]}%2f{ID[8:]}/",
    f"/user/{ID}%2F../x", "/user/%2e%2e/x",
])
def test_split_route_refuses(raw):
    with pytest.raises(BadRoute):
        split_route(raw)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    store.add_session(SessionRecord(ID, "t", "c", "10.0.0.2:8888", "img", "gh", "o/r/HEAD", "", "",
                                    "running", 1.0, 1.0))
    return store


def test_lookup_caches_for_the_ttl(store):
    clock = Clock()
    routes = RouteTable(store, ttl=2.0, clock=clock)
    assert routes.lookup(ID) == "10.0.0.2:8888"
    store.delete_session(ID)
    assert routes.lookup(ID) == "10.0.0.2:8888"  # cached
    clock.now += 2.5
    assert routes.lookup(ID) is None
    assert routes.lookup("f" * 16) is None


def test_forget_drops_the_route_at_once(store):
    routes = RouteTable(store)
    routes.lookup(ID)
    store.update_session(ID, state="stopped")
    routes.forget(ID)
    assert routes.lookup(ID) is None


def test_activity_is_flushed_at_most_every_flush_seconds(store):
    clock, wall = Clock(), Clock()
    routes = RouteTable(store, flush_seconds=5.0, clock=clock, wall_clock=wall)
    wall.now = 2000.0
    routes.touch(ID)
    assert store.get_session(ID).last_activity == 1.0  # not yet written
    clock.now += 5
    wall.now = 2005.0
    routes.touch(ID)
    assert store.get_session(ID).last_activity == 2005.0
    routes.touch(ID)
    routes.flush()
    assert store.get_session(ID).last_activity == 2005.0


def test_activity_never_goes_backwards(store):
    store.touch_sessions({ID: 50.0})
    store.touch_sessions({ID: 10.0})
    assert store.get_session(ID).last_activity == 50.0
    assert time.time() > 0
