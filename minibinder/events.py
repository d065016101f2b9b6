"""Progress events, shaped like BinderHub's event stream, produced by every long-running step."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PHASES = ("waiting", "fetching", "building", "built", "launching", "ready", "failed")


@dataclass(frozen=True)
class Event:
    phase: str
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "message": self.message, **self.data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Event:
        data = json.loads(text)
        return cls(data.pop("phase"), data.pop("message", ""), data)
