"""Email-embedded slots: GET /book/<slug>/email-snippet returns a self-contained fragment for email bodies.

The fixtures (tests/booking/conftest.py): one rep in Europe/Berlin working Mon–Fri 09:00–17:00, a round-robin
pool, meeting type "intro" (30 min, every 30 min, 60 min notice); the clock stands at Monday 2 March 2026,
07:00 UTC (08:00 in Berlin), so the first start is 09:00 Berlin = 08:00 UTC.
"""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.django_db
VOID = {"br", "hr", "img", "meta", "link", "input", "col", "wbr"}


class FragmentParser(HTMLParser):
    """Collects tags, attributes and links, and checks that every element is closed in order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.errors: list[str] = []
        self._text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "a":
            self._href, self._text = attributes.get("href", ""), []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack})")
            return
        self.stack.pop()
        if tag == "a" and self._text is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def parse(html: str) -> FragmentParser:
    parser = FragmentParser()
    parser.feed(html)
    parser.close()
    assert not parser.errors, parser.errors
    assert not parser.stack, f"unclosed: {parser.stack}"
    return parser


def snippet(client, slug="intro", **params):
    return client.get(f"/book/{slug}/email-snippet", params)


def slot_links(parsed: FragmentParser) -> list[tuple[str, dict]]:
    """(button text, query) of the links that preselect a start."""
    out = []
    for href, text in parsed.links:
        query = parse_qs(urlsplit(href).query)
        if "start" in query:
            out.append((text, {k: v[0] for k, v in query.items()}))
    return out


def test_fragment_is_self_contained_email_html(client, meeting_type, clock):
    response = snippet(client, days=3, count=6, timezone="Europe/Berlin", email="pat@example.org")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    parsed = parse(html)
    names = {tag for tag, _ in parsed.tags}
    assert names <= {"table", "tr", "td", "a"}, names  # no script, img, style, link, form, iframe
    assert "<script" not in html.lower() and "<img" not in html.lower()
    for tag, attrs in parsed.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert "class" not in attrs, "email clients drop stylesheets: inline styles only"
        if tag in {"table", "td", "a"}:
            assert attrs.get("style"), f"<{tag}> without an inline style"
    assert not html.lstrip().lower().startswith(("<!doctype", "<html")), "a fragment, not a document"


def test_count_starts_in_the_asked_zone_linking_to_the_booking_page(client, meeting_type, clock):
    response = snippet(client, days=3, count=6, timezone="America/New_York", email="pat@example.org")
    parsed = parse(response.content.decode())
    links = slot_links(parsed)
    # 09:00 Berlin (CET) = 03:00 in New York (EST: US DST begins on 8 March)
    assert [text for text, _ in links] == ["03:00", "03:30", "04:00", "04:30", "05:00", "05:30"]
    first = dt.datetime.fromisoformat(links[0][1]["start"])
    assert first.utcoffset() == dt.timedelta(hours=-5)
    assert first == dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    for _, query in links:
        assert query["email"] == "pat@example.org"
        assert query["timezone"] == "America/New_York"
    assert "America/New_York (EST)" in response.content.decode()
    assert "Mon 2 Mar" in response.content.decode()


def test_links_are_absolute_and_carry_campaign_parameters(client, meeting_type, clock):
    response = snippet(client, count=2, email="pat@example.org", utm_source="newsletter", utm_campaign="q1")
    parsed = parse(response.content.decode())
    hrefs = [href for href, _ in parsed.links]
    assert len(hrefs) == 3  # two starts and "see more times"
    for href in hrefs:
        parts = urlsplit(href)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://book.example.com/book/intro"
        query = parse_qs(parts.query)
        assert query["utm_source"] == ["newsletter"] and query["utm_campaign"] == ["q1"]
        assert query["email"] == ["pat@example.org"]
    more_href, more_text = parsed.links[-1]
    assert "more" in more_text.lower()
    assert parse_qs(urlsplit(more_href).query)["date"] == ["2026-03-02"]


def test_days_bounds_the_window_and_count_the_number(client, meeting_type, clock):
    one_day = slot_links(parse(snippet(client, days=1, count=20, timezone="Europe/Berlin").content.decode()))
    assert len(one_day) == 16  # Monday 09:00 … 16:30
    assert {q["start"][:10] for _, q in one_day} == {"2026-03-02"}
    two_days = slot_links(parse(snippet(client, days=2, count=20, timezone="Europe/Berlin").content.decode()))
    assert len(two_days) == 20
    assert two_days[-1][1]["start"] == "2026-03-03T10:30:00+01:00"


def test_the_same_starts_as_the_slots_api(client, meeting_type, clock):
    api = client.get(
        "/api/v1/meeting-types/intro/slots",
        {"timezone": "Asia/Tokyo", "start": "2026-03-02", "end": "2026-03-04"},
    ).json()
    html = snippet(client, days=3, count=20, timezone="Asia/Tokyo").content.decode()
    starts = [q["start"] for _, q in slot_links(parse(html))]
    assert starts == [s["start"] for s in api["slots"]][:20]


def test_no_free_times_says_so_and_still_links_the_page(client, meeting_type):
    import time_machine

    with time_machine.travel(dt.datetime(2026, 3, 7, 9, 0, tzinfo=dt.UTC), tick=False):  # a Saturday
        response = snippet(client, days=1, timezone="Europe/Berlin")
    html = response.content.decode()
    parsed = parse(html)
    assert not slot_links(parsed)
    assert "No free times in the next 1 day." in html
    assert len(parsed.links) == 1


def test_plain_text_alternative(client, meeting_type, clock):
    response = snippet(client, count=3, timezone="Europe/Berlin", email="pat@example.org", format="text")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    text = response.content.decode()
    assert "<" not in text
    assert "times in Europe/Berlin (CET)" in text
    lines = [line.split() for line in text.splitlines() if "start=" in line]
    assert [parts[0] for parts in lines] == ["09:00", "09:30", "10:00"]
    assert all(parts[1].startswith("https://book.example.com/book/intro?start=") for parts in lines)
    assert "See more times: https://book.example.com/book/intro?" in text


def test_values_are_escaped(client, pool, clock):
    from tests.booking.booking_factories import make_meeting_type

    make_meeting_type(pool, slug="xss", title='<script>alert("x")</script>')
    html = snippet(client, slug="xss", name='"><script>x</script>').content.decode()
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    parse(html)


@pytest.mark.parametrize(
    "params,field",
    [
        ({"days": "0"}, "days"),
        ({"days": "15"}, "days"),
        ({"days": "three"}, "days"),
        ({"count": "0"}, "count"),
        ({"count": "21"}, "count"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"email": "not-an-email"}, "email"),
        ({"format": "pdf"}, "format"),
        ({"utm_Source": "x"}, "utm_Source"),
        ({"utm_source": "x" * 201}, "utm_source"),
    ],
)
def test_bad_parameters_are_400_with_the_field(client, meeting_type, clock, params, field):
    response = snippet(client, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["errors"], body


def test_unknown_or_inactive_meeting_type_is_404(client, meeting_type, clock):
    assert snippet(client, slug="nope").status_code == 404
    meeting_type.active = False
    meeting_type.save()
    response = snippet(client)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_only_get(client, meeting_type, clock):
    assert client.post("/book/intro/email-snippet").status_code == 405


def test_starts_across_a_change_of_clocks_say_their_own_abbreviation(client, clock):
    """New York moves to summer time on Sunday 8 March 2026: starts before it are EST (UTC-5), after it EDT
    (UTC-4). One "(EST)" heading for both put a reader converting "10:00 EST" an hour off; each day says its
    own abbreviation then (the heading keeps one only when every start shares it)."""
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    ny = make_rep("Nia", tz="America/New_York", hours=(10, 11))
    make_meeting_type(make_pool("round_robin", [ny]), slug="ny-intro")
    params = {"days": 14, "count": 20, "timezone": "America/New_York", "format": "text"}
    text = client.get("/book/ny-intro/email-snippet", params).content.decode()
    assert "(EST)" not in text.splitlines()[0], text
    assert "Fri 6 Mar (EST)" in text and "Mon 9 Mar (EDT)" in text, text
    one_side = client.get("/book/ny-intro/email-snippet", {**params, "days": 4}).content.decode()
    assert "America/New_York (EST)" in one_side.splitlines()[0] and "(EDT)" not in one_side
