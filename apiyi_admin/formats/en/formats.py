"""English date formats for the console: compact, unambiguous, 24-hour."""

DATE_FORMAT = "M j, Y"
DATETIME_FORMAT = "M j, Y, H:i:s"
TIME_FORMAT = "H:i:s"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "M j, H:i:s"
MONTH_DAY_FORMAT = "D j M"
YEAR_MONTH_FORMAT = "F Y"
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
