"""`minibinder serve`: run the Flask app under gunicorn."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from .config import Config


class _Gunicorn(BaseApplication):
    def __init__(self, config: Config, bind: str):
        self.minibinder_config = config
        self.bind = bind
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", self.bind)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", 32)
        self.cfg.set("workers", 1)

    def load(self):
        from .web import create_app

        return create_app(self.minibinder_config)


def run_server(config: Config, bind: str) -> None:
    _Gunicorn(config, bind).run()
