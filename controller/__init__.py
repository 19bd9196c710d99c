"""v2ghub: OCPP central system and frequency-response controller for bidirectional EV sites."""

__version__ = "0.1.0"
