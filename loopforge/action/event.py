"""Step 1 — read event: the payload file the runner wrote, as a typed ``Event``.

A missing or unreadable file is an ``InputError`` (LoopForge is not running as a workflow step); a file that is
not a GitHub payload (not UTF-8 JSON, or a ``\\ud800``-style escape of half a UTF-16 pair, which decodes to no text)
is ``MalformedEvent``; an event LoopForge does not track is ``UnsupportedEvent``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from loopforge.action.config import Config
from loopforge.errors import InputError, MalformedEvent
from loopforge.github.events import Event, parse_event

#: GitHub caps webhook payloads at 25 MB: a larger file is not a GitHub event.
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024

#: a JSON escape of a UTF-16 surrogate: in a pair it is one character, alone it decodes to a str no file, API
#: body or log line can hold (UnicodeEncodeError far from here)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def read_event(cfg: Config) -> Event:
    if not cfg.event_name:
        raise InputError("GITHUB_EVENT_NAME is not set: run LoopForge as a step of a workflow")
    if not cfg.event_path:
        raise InputError("GITHUB_EVENT_PATH is not set: run LoopForge as a step of a workflow")
    return parse_event(cfg.event_name, _payload(cfg.event_path))


def _payload(path: str) -> object:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the event payload ({exc.strerror or exc}); run LoopForge as a workflow "
                         f"step so the runner provides GITHUB_EVENT_PATH") from None
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise MalformedEvent("the event payload is over 25 MiB; GitHub caps webhooks at 25 MB, so this file is not "
                             "a GitHub event")
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedEvent("the event payload is not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        detail = f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "nesting"
        raise MalformedEvent(f"the event payload is not valid JSON ({detail})") from None
    if _SURROGATE_ESCAPE.search(raw):  # rare (an escaped emoji is a pair): only then look at every string
        try:
            json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedEvent("the event payload is not UTF-8 text (it escapes half a UTF-16 surrogate "
                                 "pair)") from None
    return payload
