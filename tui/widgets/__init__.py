"""Widgets of the main screen, one per module. Styling lives in tui/styles.tcss."""
