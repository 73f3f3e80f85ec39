"""The naming rules of clips, participants and sessions, in one place.

A REACT clip id is ``<site>/<session>/<person>/<clip>`` (e.g.
``NoXI/010_2016-03-25_Paris/Expert_video/3``): the clip stage names the clips it cuts that way,
the REACT reader reads them that way, identity maps are keyed by the ``<site>/<session>/<person>``
part and MARS recordings carry their appropriateness group in their session id. Every stage that
needs one of these rules imports it from here.
"""

from __future__ import annotations

import re

from reactcli.errors import InputError
from reactcli.manifest.records import SessionRecord

__all__ = ["clip_person", "participant_id", "participant_of", "MARS_SESSION", "mars_session_id", "group_of"]


def clip_person(site: str, person: str) -> str:
    """REACT person folder of a raw participant (NoXI ``Expert`` -> ``Expert_video``)."""
    if site == "NoXI" and person in ("Expert", "Novice"):
        return f"{person}_video"
    return person


def participant_id(session: SessionRecord, person: str) -> str:
    """``<site>/<session>/<person>`` of a raw participant as its clip ids name it (the clip id of
    clip ``i`` is this plus ``/<i>``); what an identity map's keys must say (see
    :mod:`reactcli.manifest.identities`)."""
    folder = session.id.split("/", 1)[1] if "/" in session.id else session.id
    return f"{session.site}/{folder}/{clip_person(session.site, person)}"


def participant_of(clip_id: str) -> str:
    """``<site>/<session>/<person>`` of a clip id ``<site>/<session>/<person>/<clip>``."""
    parts = clip_id.split("/")
    return "/".join(parts[:-1]) if len(parts) > 1 else clip_id


MARS_SESSION = re.compile(r"^MARS/(?P<split>[^-/]+)-(?P<session>session[^-/]+)-(?P<clip>[^/]+)$")
"""A MARS recording's session id: ``MARS/<split>-session<k>-<clip>``."""


def mars_session_id(split: str, session: str, clip: str) -> str:
    """The session id of the MARS recording ``<split>/<session>/<clip>`` (see :data:`MARS_SESSION`)."""
    return f"MARS/{split}-{session}-{clip}"


def group_of(session_id: str) -> str:
    """``MARS/<split>-session<k>-<clip>`` -> ``<split>/session<k>`` (the appropriateness group:
    every listener of the same MARS session is appropriate)."""
    m = MARS_SESSION.match(session_id)
    if not m:
        raise InputError(f"{session_id}: not a MARS session id (expected MARS/<split>-session<k>-<clip>)")
    return f"{m['split']}/{m['session']}"
