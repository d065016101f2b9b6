"""The SQLite store shared by every worker: activity, launch log retention."""

from minibinder.jobs import erase_old_ips
from minibinder.services import create_services
from minibinder.settings_load import load_config
from minibinder.store import SessionRecord, Store

ID = "0123456789abcdef"


def test_activity_never_goes_backwards(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    store.add_session(
        SessionRecord(
            ID, "t", "c", "10.0.0.2:8888", "img", "gh", "o/r/HEAD", "", "", "running", 1.0, 1.0
        )
    )
    store.touch_sessions({ID: 50.0})
    store.touch_sessions({ID: 10.0})
    assert store.get_session(ID).last_activity == 50.0


def test_ip_retention_erases_only_old_addresses(tmp_path):
    services = create_services(load_config(overrides={"data_dir": str(tmp_path)}))
    store = services.store
    day = 86400
    now = 100 * day
    store.record_launch(
        "gh", "o/r/HEAD", "a" * 40, "success", 1.0, 2.0, "10.0.0.1", when=now - 31 * day
    )
    store.record_launch(
        "gh", "o/r/HEAD", "a" * 40, "success", 1.0, 2.0, "10.0.0.2", when=now - 29 * day
    )
    assert erase_old_ips(services, now=now) == 1
    assert [row["client_ip"] for row in store.launches()] == ["10.0.0.2", None]
    assert erase_old_ips(services, now=now) == 0
