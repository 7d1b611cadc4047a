"""Placeholder created by the lead for issue 15; its owner fills it in."""
