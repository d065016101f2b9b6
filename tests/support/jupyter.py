"""Talk to a session's Jupyter through minibinder's proxy: start kernels, run code."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import websocket


def api(
    ready: dict, path: str, method: str = "GET", body: dict | None = None
) -> tuple[int, object]:
    request = urllib.request.Request(
        f"{ready['url']}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {ready['token']}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read()
            return response.status, json.loads(data) if data else None
    except urllib.error.HTTPError as error:
        return error.code, None


def start_kernel(ready: dict) -> str:
    status, kernel = api(ready, "api/kernels", "POST", {})
    assert status == 201, status
    return kernel["id"]


def execute(ready: dict, kernel_id: str, code: str, timeout: float = 60, wait: bool = True) -> dict:
    """Send code; with `wait`, collect stdout and the final status until the kernel is idle."""
    ws = websocket.create_connection(
        f"{ready['url'].replace('http', 'ws', 1)}api/kernels/{kernel_id}/channels",
        header=[f"Authorization: token {ready['token']}"],
        timeout=timeout,
    )
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "msg_type": "execute_request",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                },
            }
        )
    )
    result = {"stdout": "", "status": None, "states": []}
    if not wait:
        ws.recv()  # at least one message: the kernel got it
        ws.close()
        return result
    deadline = time.monotonic() + timeout
    idle_since = 0.0
    try:
        while True:
            # Jupyter pings every 30 s, which websocket-client answers inside recv(): only an
            # overall deadline ends the wait for a kernel that died.
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                result["error"] = "timeout"
                break
            ws.settimeout(min(remaining, 1 if idle_since else 5))
            try:
                message = json.loads(ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            if message.get("msg_type") == "status" and message["content"].get(
                "execution_state"
            ) in ("restarting", "dead"):
                # Jupyter says so when the kernel died (its parent is no request of ours): this
                # cell will never finish.
                result["states"].append(message["content"]["execution_state"])
                break
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                result["stdout"] += message["content"]["text"]
            elif kind == "status":
                result["states"].append(message["content"]["execution_state"])
            elif kind == "execute_reply":
                result["status"] = message["content"]["status"]
            # iopub's "idle" and shell's reply travel separately: either may come first; a
            # kernel that died mid-cell goes idle (restarted) and never replies.
            if "idle" in result["states"]:
                idle_since = idle_since or time.monotonic()
                if result["status"] is not None or time.monotonic() - idle_since > 3:
                    break
    except (websocket.WebSocketException, OSError) as error:
        result["error"] = repr(error)
    finally:
        ws.close()
    return result
