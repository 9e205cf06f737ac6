"""Signals other apps listen to (kept here so the booking app never imports its listeners).

``booking_page_viewed``: sent by the prospect-facing booking page on each page view (not on API calls),
with ``meeting_type`` (MeetingType), ``visitor`` (a stable anonymous id from a first-party cookie),
``utm`` (dict of utm_* query values) and ``request``. Insights records the funnel from it.

``lead_routed``: sent after the routing rules decided a prospect's route (qualified or disqualified), with
``meeting_type``, ``lead`` (the stored lead row) and ``disqualified`` (bool).
"""

from django.dispatch import Signal

booking_page_viewed = Signal()
lead_routed = Signal()
