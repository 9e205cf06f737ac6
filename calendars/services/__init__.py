"""Write paths of the calendars app (connections, sync, push channels, booking write-back)."""
