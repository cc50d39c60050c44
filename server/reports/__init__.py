"""Attendance reports: the key figures (``figures``), their privacy-safe publication (``privacy``) and a
synthetic forum to test and measure them (``synthetic``)."""
