"""Calendar providers behind one contract (``base.CalendarProvider``): Google, Microsoft 365, ICS feeds."""
