"""Offline tools (evaluation, eligibility, reports) built on the same control core."""
