"""Route parsing on raw paths, and the route table's cache and activity flushing."""

import pytest

from minibinder.proxy.routes import BadRoute, RouteTable, split_route

ID = "0123456789abcdef"


@pytest.mark.parametrize(
    "raw, expected",
    [
        (f"/user/{ID}/", (ID, f"/user/{ID}/")),
        (f"/user/{ID}/lab?token=x", (ID, f"/user/{ID}/lab?token=x")),
        (f"/user/{ID}", (ID, f"/user/{ID}")),
        (f"/user/{ID}/api/contents/a%20b.ipynb", (ID, f"/user/{ID}/api/contents/a%20b.ipynb")),
        (f"/user/{ID}/files/dir%2Ffile.txt", (ID, f"/user/{ID}/files/dir%2Ffile.txt")),
        (f"/user/{ID}/lab?path=../x", (ID, f"/user/{ID}/lab?path=../x")),
        ("/user/short/", None),
        ("/user/", None),
        ("/other", None),
        (f"/user/{ID.upper()}/", None),
    ],
)
def test_split_route(raw, expected):
    assert split_route(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        f"/user/{ID}/../x",
        f"/user/{ID}/%2e%2e/x",
        f"/user/{ID}/.%2E/x",
        f"/user/{ID}/./x",
        f"/user/{ID}/..",
        f"/user/{ID}\\x",
        f"/user/{ID}/%5c",
        f"/user/{ID[:8]}%2f{ID[8:]}/",
        f"/user/{ID}%2F../x",
        "/user/%2e%2e/x",
    ],
)
def test_split_route_refuses(raw):
    with pytest.raises(BadRoute):
        split_route(raw)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeShared:
    """The shared truth the route table asks: targets by session, activity written."""

    def __init__(self):
        self.targets = {ID: "10.0.0.2:8888"}
        self.activity: dict[str, float] = {}
        self.writes = 0

    def lookup(self, session_id):
        return self.targets.get(session_id)

    def record(self, activity):
        self.writes += 1
        self.activity.update(activity)


@pytest.fixture
def shared():
    return FakeShared()


def test_lookup_caches_for_the_ttl(shared):
    clock = Clock()
    routes = RouteTable(shared.lookup, shared.record, ttl=2.0, clock=clock)
    assert routes.lookup(ID) == "10.0.0.2:8888"
    del shared.targets[ID]
    assert routes.lookup(ID) == "10.0.0.2:8888"  # cached
    clock.now += 2.5
    assert routes.lookup(ID) is None
    assert routes.lookup("f" * 16) is None


def test_forget_drops_the_route_at_once(shared):
    routes = RouteTable(shared.lookup, shared.record)
    routes.lookup(ID)
    del shared.targets[ID]
    routes.forget(ID)
    assert routes.lookup(ID) is None


def test_activity_is_flushed_at_most_every_flush_seconds(shared):
    clock, wall = Clock(), Clock()
    routes = RouteTable(
        shared.lookup, shared.record, flush_seconds=5.0, clock=clock, wall_clock=wall
    )
    wall.now = 2000.0
    routes.touch(ID)
    assert shared.activity == {}  # not yet written
    clock.now += 5
    wall.now = 2005.0
    routes.touch(ID)
    assert shared.activity == {ID: 2005.0}
    assert shared.writes == 1
    routes.flush()  # nothing new since: nothing written
    assert shared.writes == 1


def test_forget_drops_pending_activity(shared):
    clock = Clock()
    routes = RouteTable(shared.lookup, shared.record, clock=clock, wall_clock=clock)
    routes.touch(ID)
    routes.forget(ID)
    routes.flush()
    assert shared.activity == {}
