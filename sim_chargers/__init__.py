"""Simulated bidirectional charger fleet: real OCPP 2.0.1 clients driving vehicle plants."""
